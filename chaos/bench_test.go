package chaos_test

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/orderflow/orderflow/chaos"
)

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkMiddleware measures what the middleware adds to a request when
// chaos is off (the production default) and when a fault is configured for
// the other side only, against the bare handler. One goroutine: the hot
// path only reads shared state, so contention is not what is measured.
func BenchmarkMiddleware(b *testing.B) {
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	req, _ := http.NewRequest(http.MethodGet, "/v1/orders", nil)
	for _, bc := range []struct {
		name     string
		settings *chaos.Settings
	}{
		{"bare", nil},
		{"off", &chaos.Settings{}},
		{"client-only-fault", &chaos.Settings{Error: &chaos.ErrorFault{Status: 503, Probability: 1, Scope: chaos.Scope{Sides: []chaos.Side{chaos.Client}}}}},
		{"server-p0.01-miss-path", &chaos.Settings{Error: &chaos.ErrorFault{Status: 503, Probability: 0.01, Scope: chaos.Scope{PathPrefix: "/v1/risk/"}}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var h http.Handler = noop
			if bc.settings != nil {
				inj := chaos.New(chaos.Config{Logger: slog.New(slog.DiscardHandler)})
				defer inj.Close()
				if err := inj.Set(*bc.settings); err != nil {
					b.Fatal(err)
				}
				h = inj.Middleware(noop)
			}
			w := &discardWriter{h: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkTransport is BenchmarkMiddleware for the client side: a stub base
// RoundTripper, bare and behind an injector that is off.
func BenchmarkTransport(b *testing.B) {
	resp := &http.Response{StatusCode: 200, Body: http.NoBody}
	stub := roundTripFunc(func(*http.Request) (*http.Response, error) { return resp, nil })
	req, _ := http.NewRequest(http.MethodGet, "http://order.invalid/v1/risk/callbacks", nil)
	inj := chaos.New(chaos.Config{Logger: slog.New(slog.DiscardHandler)})
	defer inj.Close()
	for _, bc := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"bare", stub},
		{"off", inj.Transport(stub)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.rt.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
