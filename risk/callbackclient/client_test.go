package callbackclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/breaker"
	"github.com/orderflow/orderflow/httpapi/callbacksig"
	"github.com/orderflow/orderflow/httpclient"
	"github.com/orderflow/orderflow/risk/callbackclient"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var secret = []byte("test-secret")

func testCallback() *orderflow.Callback {
	return &orderflow.Callback{
		EventID: "evt_dec_ord_1", OrderID: "ord_1", EventType: orderflow.EventRiskDecided,
		Decision: orderflow.DecisionApprove, Score: 0.1, ModelVersion: "v2.1",
		DecidedAt: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC),
	}
}

// newClient returns a client against a server that checks the signature and
// the body, then answers status (with Retry-After when set).
func newClient(t *testing.T, status int, retryAfter string, br *breaker.Breaker) (*callbackclient.Client, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != callbackclient.Path || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("got %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		if err := callbacksig.Verify(r.Header.Get(callbacksig.Header), body, [][]byte{secret}, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		var cb orderflow.Callback
		if err := json.Unmarshal(body, &cb); err != nil || cb != *testCallback() {
			t.Errorf("body %s: %v", body, err)
		}
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
		io.WriteString(w, `{"status":"x"}`)
	}))
	t.Cleanup(srv.Close)
	hc := httpclient.New(httpclient.Config{Name: "test", TrackBodies: true})
	t.Cleanup(hc.CloseIdleConnections)
	httpclient.CheckBodies(t, hc)
	c, err := callbackclient.New(callbackclient.Config{HTTP: hc.Client, BaseURL: srv.URL + "/", Secrets: [][]byte{secret, []byte("old")}, Breaker: br})
	if err != nil {
		t.Fatal(err)
	}
	return c, &calls
}

func TestSendClassifies(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter string
		want       callbackclient.Class
		duplicate  bool
		wantAfter  time.Duration
	}{
		{"Accepted", 202, "", callbackclient.Delivered, false, 0},
		{"Duplicate", 200, "", callbackclient.Delivered, true, 0},
		{"BadRequest", 400, "", callbackclient.Permanent, false, 0},
		{"Unauthenticated", 401, "", callbackclient.Permanent, false, 0},
		{"UnknownOrder", 404, "", callbackclient.Permanent, false, 0},
		{"TooLarge", 413, "", callbackclient.Permanent, false, 0},
		{"MediaType", 415, "", callbackclient.Permanent, false, 0},
		{"Conflict", 409, "", callbackclient.Conflict, false, 0},
		{"TooMany", 429, "2", callbackclient.Retry, false, 2 * time.Second},
		{"Unavailable", 503, "1", callbackclient.Retry, false, time.Second},
		{"Internal", 500, "", callbackclient.Retry, false, 0},
		{"Timeout", 504, "", callbackclient.Retry, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newClient(t, tt.status, tt.retryAfter, nil)
			res := c.Send(context.Background(), testCallback())
			if res.Class != tt.want || res.Status != tt.status || res.Duplicate != tt.duplicate || res.RetryAfter != tt.wantAfter {
				t.Errorf("got %+v, want class %v status %d duplicate %v retry-after %v", res, tt.want, tt.status, tt.duplicate, tt.wantAfter)
			}
			if (res.Err == nil) != (tt.want == callbackclient.Delivered) {
				t.Errorf("err %v for class %v", res.Err, res.Class)
			}
		})
	}
}

func TestSendNetworkErrorIsRetry(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	hc := httpclient.New(httpclient.Config{})
	defer hc.CloseIdleConnections()
	c, err := callbackclient.New(callbackclient.Config{HTTP: hc.Client, BaseURL: url, Secrets: [][]byte{secret}})
	if err != nil {
		t.Fatal(err)
	}
	if res := c.Send(context.Background(), testCallback()); res.Class != callbackclient.Retry || res.Err == nil {
		t.Errorf("got %+v, want retry with an error", res)
	}
}

func TestSendBreakerOpenSendsNothing(t *testing.T) {
	br := breaker.New(breaker.Config{ConsecutiveFailures: 2})
	c, calls := newClient(t, 503, "", br)
	for range 2 {
		c.Send(context.Background(), testCallback())
	}
	res := c.Send(context.Background(), testCallback())
	if res.Class != callbackclient.BreakerOpen || !errors.Is(res.Err, breaker.ErrOpen) {
		t.Errorf("got %+v, want breaker_open", res)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("server saw %d calls, want 2: an open breaker must not send", n)
	}
}

func TestNewRequiresConfig(t *testing.T) {
	hc := &http.Client{}
	for name, cfg := range map[string]callbackclient.Config{
		"NoHTTP":    {BaseURL: "http://x", Secrets: [][]byte{secret}},
		"NoURL":     {HTTP: hc, Secrets: [][]byte{secret}},
		"NoSecrets": {HTTP: hc, BaseURL: "http://x"},
	} {
		if _, err := callbackclient.New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 1 ", time.Second},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{"99999", time.Hour},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := callbackclient.ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestClassifyStatus(t *testing.T) {
	for status, want := range map[int]callbackclient.Class{
		200: callbackclient.Delivered, 202: callbackclient.Delivered, 408: callbackclient.Retry,
		409: callbackclient.Conflict, 422: callbackclient.Permanent, 502: callbackclient.Retry, 302: callbackclient.Retry,
	} {
		if got := callbackclient.ClassifyStatus(status); got != want {
			t.Errorf("ClassifyStatus(%d) = %v, want %v", status, got, want)
		}
	}
}
