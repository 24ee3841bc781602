package chaos_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/orderflow/orderflow/chaos"
)

// Fail every callback the server receives with a 503, leave other paths alone.
func ExampleInjector_Middleware() {
	inj := chaos.New(chaos.Config{Logger: slog.New(slog.DiscardHandler)})
	defer inj.Close()
	s, err := chaos.ParseSettings([]byte(`{"error":{"status":503,"sides":["server"],"path_prefix":"/v1/risk/"}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := inj.Set(s); err != nil {
		fmt.Println(err)
		return
	}
	h := inj.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "applied\n")
	}))

	for _, path := range []string{"/v1/risk/callbacks", "/v1/orders"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, nil))
		fmt.Printf("%s %d %s", path, rec.Code, rec.Body)
	}
	// Output:
	// /v1/risk/callbacks 503 {"error":{"code":"unavailable","message":"chaos"}}
	// /v1/orders 200 applied
}

// Drop a client's requests before they leave, as a flaky network would.
func ExampleInjector_Transport() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()

	inj := chaos.New(chaos.Config{Logger: slog.New(slog.DiscardHandler)})
	defer inj.Close()
	client := &http.Client{Transport: inj.Transport(nil)}
	defer client.CloseIdleConnections()

	inj.Set(chaos.Settings{Error: &chaos.ErrorFault{Drop: true, Probability: 1, Scope: chaos.Scope{Sides: []chaos.Side{chaos.Client}}}})
	_, err := client.Get(srv.URL)
	fmt.Println(err != nil && strings.Contains(err.Error(), chaos.ErrDropped.Error()))

	inj.Set(chaos.Settings{}) // off again
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// true
	// 200
}
