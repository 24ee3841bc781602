package chaos_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/chaos"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newInjector(t *testing.T, seed uint64) *chaos.Injector {
	t.Helper()
	inj := chaos.New(chaos.Config{
		Logger: slog.New(slog.DiscardHandler),
		Rand:   chaos.SeededRand(seed),
	})
	t.Cleanup(func() { inj.Close() })
	return inj
}

func mustSet(t *testing.T, inj *chaos.Injector, s chaos.Settings) {
	t.Helper()
	if err := inj.Set(s); err != nil {
		t.Fatal(err)
	}
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })

func serve(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestMiddlewareError(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		writeError func(http.ResponseWriter, *http.Request, int)
		wantBody   string
		wantRetry  string
	}{
		{"Unavailable503WithRetryAfter", 503, nil, `{"error":{"code":"unavailable","message":"chaos"}}`, "1"},
		{"Internal500", 500, nil, `{"error":{"code":"internal","message":"chaos"}}`, ""},
		{"TooMany429WithRetryAfter", 429, nil, `{"error":{"code":"resource_exhausted","message":"chaos"}}`, "1"},
		{"CallerFormat", 504, func(w http.ResponseWriter, _ *http.Request, status int) {
			w.WriteHeader(status)
			io.WriteString(w, "custom")
		}, "custom", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inj := chaos.New(chaos.Config{Logger: slog.New(slog.DiscardHandler), WriteError: tt.writeError})
			defer inj.Close()
			mustSet(t, inj, chaos.Settings{Error: &chaos.ErrorFault{Status: tt.status, Probability: 1}})
			rec := serve(inj.Middleware(okHandler), "/v1/orders")
			if rec.Code != tt.status {
				t.Errorf("status = %d, want %d", rec.Code, tt.status)
			}
			if got := strings.TrimSpace(rec.Body.String()); got != tt.wantBody {
				t.Errorf("body = %s, want %s", got, tt.wantBody)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
			if got := inj.Injected(chaos.Server, "error"); got != 1 {
				t.Errorf("injected errors = %d, want 1", got)
			}
		})
	}
}

func TestMiddlewareDropAbortsConnection(t *testing.T) {
	inj := newInjector(t, 1)
	mustSet(t, inj, chaos.Settings{Error: &chaos.ErrorFault{Drop: true, Probability: 1}})
	srv := httptest.NewUnstartedServer(inj.Middleware(okHandler))
	srv.Config.ErrorLog = nil
	srv.Start()
	defer srv.Close()
	c := srv.Client()
	defer c.CloseIdleConnections()

	resp, err := c.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got status %d, want the connection dropped", resp.StatusCode)
	}
}

func TestMiddlewareLatency(t *testing.T) {
	inj := newInjector(t, 1)
	const fixed = 30 * time.Millisecond
	mustSet(t, inj, chaos.Settings{Latency: &chaos.Latency{Fixed: fixed, Jitter: 10 * time.Millisecond, Probability: 1}})
	start := time.Now()
	rec := serve(inj.Middleware(okHandler), "/")
	// A timer never fires early, so the lower bound is safe on a busy machine;
	// no upper bound is asserted.
	if elapsed := time.Since(start); elapsed < fixed {
		t.Errorf("request took %v, want at least %v", elapsed, fixed)
	}
	if rec.Code != http.StatusOK || rec.Body.String() != "ok" {
		t.Errorf("got %d %q, want the handler's answer after the delay", rec.Code, rec.Body)
	}
}

func TestLatencyEndsWithContext(t *testing.T) {
	const long = time.Minute
	settings := chaos.Settings{Latency: &chaos.Latency{Fixed: long, Probability: 1}}

	t.Run("Server", func(t *testing.T) {
		inj := newInjector(t, 1)
		mustSet(t, inj, settings)
		var sawErr error
		h := inj.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { sawErr = r.Context().Err() }))
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		start := time.Now()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil))
		if elapsed := time.Since(start); elapsed > long/2 {
			t.Fatalf("middleware waited %v after the context ended", elapsed)
		}
		if !errors.Is(sawErr, context.DeadlineExceeded) {
			t.Errorf("handler saw ctx error %v, want it to run with the ended context", sawErr)
		}
	})

	t.Run("Client", func(t *testing.T) {
		inj := newInjector(t, 1)
		mustSet(t, inj, settings)
		called := false
		tr := inj.Transport(roundTripFunc(func(*http.Request) (*http.Response, error) { called = true; return nil, nil }))
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(20*time.Millisecond, cancel)
		body := &closeRecorder{Reader: strings.NewReader("{}")}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://risk.invalid/v1/risk/callbacks", body)
		start := time.Now()
		_, err := tr.RoundTrip(req)
		if elapsed := time.Since(start); elapsed > long/2 {
			t.Fatalf("transport waited %v after the context ended", elapsed)
		}
		if !errors.Is(err, context.Canceled) || called || !body.closed {
			t.Errorf("err = %v, base called = %v, body closed = %v; want Canceled, false, true", err, called, body.closed)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestTransportError(t *testing.T) {
	base := roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Error("the request reached the network")
		return nil, errors.New("unreachable")
	})
	t.Run("SynthesizedResponse", func(t *testing.T) {
		inj := newInjector(t, 1)
		mustSet(t, inj, chaos.Settings{Error: &chaos.ErrorFault{Status: 503, Probability: 1, Scope: chaos.Scope{Sides: []chaos.Side{chaos.Client}}}})
		body := &closeRecorder{Reader: strings.NewReader("{}")}
		req, _ := http.NewRequest(http.MethodPost, "http://order.invalid/v1/risk/callbacks", body)
		resp, err := inj.Transport(base).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct {
			Error struct{ Code, Message string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 503 || got.Error.Code != "unavailable" || resp.Header.Get("Retry-After") != "1" ||
			resp.Header.Get(chaos.InjectedHeader) != "error" || resp.Request != req || !body.closed {
			t.Errorf("got %s %+v headers %v, body closed %v", resp.Status, got, resp.Header, body.closed)
		}
	})
	t.Run("Drop", func(t *testing.T) {
		inj := newInjector(t, 1)
		mustSet(t, inj, chaos.Settings{Error: &chaos.ErrorFault{Drop: true, Probability: 1}})
		req, _ := http.NewRequest(http.MethodGet, "http://order.invalid/", nil)
		if _, err := inj.Transport(base).RoundTrip(req); !errors.Is(err, chaos.ErrDropped) {
			t.Errorf("err = %v, want ErrDropped", err)
		}
	})
}

func TestScope(t *testing.T) {
	fault := func(sc chaos.Scope) chaos.Settings {
		return chaos.Settings{Error: &chaos.ErrorFault{Status: 500, Probability: 1, Scope: sc}}
	}
	tests := []struct {
		name                   string
		settings               chaos.Settings
		path                   string
		wantServer, wantClient bool
	}{
		{"Off", chaos.Settings{}, "/", false, false},
		{"BothSidesByDefault", fault(chaos.Scope{}), "/", true, true},
		{"ServerOnly", fault(chaos.Scope{Sides: []chaos.Side{chaos.Server}}), "/", true, false},
		{"ClientOnly", fault(chaos.Scope{Sides: []chaos.Side{chaos.Client}}), "/", false, true},
		{"PathPrefixMatches", fault(chaos.Scope{PathPrefix: "/v1/risk/"}), "/v1/risk/callbacks", true, true},
		{"PathPrefixMisses", fault(chaos.Scope{PathPrefix: "/v1/risk/"}), "/v1/orders", false, false},
		{"ZeroProbabilityIsOff", chaos.Settings{Error: &chaos.ErrorFault{Status: 500}}, "/", false, false},
	}
	ok := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inj := newInjector(t, 1)
			mustSet(t, inj, tt.settings)
			gotServer := serve(inj.Middleware(okHandler), tt.path).Code == 500
			req, _ := http.NewRequest(http.MethodGet, "http://x.invalid"+tt.path, nil)
			resp, err := inj.Transport(ok).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			gotClient := resp.StatusCode == 500
			if gotServer != tt.wantServer || gotClient != tt.wantClient {
				t.Errorf("server, client faulted = %v, %v; want %v, %v", gotServer, gotClient, tt.wantServer, tt.wantClient)
			}
		})
	}
}

func TestProbability(t *testing.T) {
	const n = 10000
	tests := []struct {
		name   string
		p      float64
		lo, hi int // a wide band: ±10 standard deviations at p=0.3 is ±460
	}{
		{"Never", 0, 0, 0},
		{"ThirtyPercent", 0.3, 2500, 3500},
		{"NinetyPercent", 0.9, 8700, 9300},
		{"Always", 1, n, n},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inj := newInjector(t, 42)
			mustSet(t, inj, chaos.Settings{Error: &chaos.ErrorFault{Status: 503, Probability: tt.p}})
			h := inj.Middleware(okHandler)
			faults := 0
			for range n {
				if serve(h, "/").Code == 503 {
					faults++
				}
			}
			if faults < tt.lo || faults > tt.hi {
				t.Errorf("%d faults in %d requests at p=%v, want %d..%d", faults, n, tt.p, tt.lo, tt.hi)
			}
		})
	}
}

func TestSeededRandIsReproducible(t *testing.T) {
	a, b := chaos.SeededRand(7), chaos.SeededRand(7)
	for i := range 100 {
		if x, y := a(), b(); x != y || x < 0 || x >= 1 {
			t.Fatalf("draw %d: %v vs %v", i, x, y)
		}
	}
}

func TestSetAfterClose(t *testing.T) {
	inj := newInjector(t, 1)
	mustSet(t, inj, chaos.Settings{Error: &chaos.ErrorFault{Status: 503, Probability: 1}})
	inj.Close()
	if err := inj.Set(chaos.Settings{}); !errors.Is(err, chaos.ErrClosed) {
		t.Errorf("Set after Close = %v, want ErrClosed", err)
	}
	if rec := serve(inj.Middleware(okHandler), "/"); rec.Code != 200 {
		t.Errorf("closed injector still faults: %d", rec.Code)
	}
}

func TestNilInjectorPassesThrough(t *testing.T) {
	var inj *chaos.Injector
	if rec := serve(inj.Middleware(okHandler), "/"); rec.Code != 200 {
		t.Errorf("status = %d", rec.Code)
	}
	if inj.Transport(nil) != http.DefaultTransport {
		t.Error("nil injector should return the base transport")
	}
}
