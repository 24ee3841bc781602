package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/httpapi"
	"github.com/orderflow/orderflow/telemetry"
)

func TestAdmin(t *testing.T) {
	m := telemetry.New()
	extra := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "chaos off") })
	srv := httptest.NewServer(httpapi.NewAdmin(httpapi.AdminConfig{Metrics: m, Extra: map[string]http.Handler{"GET /admin/chaos": extra}}))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		res, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	tests := []struct {
		path, want string
		status     int
	}{
		{"/metrics", "orderflow_errors_total{error_code=\"conflict\"} 0", 200},
		{"/metrics", "go_goroutines", 200},
		{"/debug/pprof/", "goroutine", 200},
		{"/debug/pprof/goroutine?debug=1", "goroutine profile", 200},
		{"/debug/pprof/cmdline", "", 200},
		{"/admin/chaos", "chaos off", 200},
		{"/v1/orders", "not_found", 404},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			status, body := get(tt.path)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Errorf("GET %s: %d, body lacks %q:\n%.300s", tt.path, status, tt.want, body)
			}
		})
	}
	// The admin mux counts its own requests, under their route pattern.
	_, body := get("/metrics")
	if !strings.Contains(body, `orderflow_http_request_duration_seconds_count{route="GET /metrics",status_class="2xx"}`) {
		t.Errorf("admin requests not instrumented:\n%s", body)
	}
	if strings.Contains(body, `route="/debug`) {
		t.Error("pprof requests must not be in the duration histogram")
	}
}
