package deadline_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orderflow/orderflow/deadline"
)

// processCPU is the CPU time this process has used. Reported per op beside
// wall time: on a shared machine wall time mostly says how much CPU we were
// given, CPU time what the code costs (for BenchmarkHop, client and server
// together, since both run in this process).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loopCPU runs body in a b.Loop and reports cpu-ns/op.
func loopCPU(b *testing.B, body func()) {
	b.ReportAllocs()
	start := processCPU(b)
	n := 0
	for b.Loop() {
		body()
		n++
	}
	b.ReportMetric(float64(processCPU(b)-start)/float64(n), "cpu-ns/op")
}

// okHandler writes a tiny response, as most of our handlers do.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "{}")
})

// BenchmarkMiddleware is the per-request cost of the middleware in process,
// without network: parse, derive the context, guard the writer.
func BenchmarkMiddleware(b *testing.B) {
	tests := []struct {
		name string
		h    http.Handler
		hdr  string
	}{
		{"bare", okHandler, ""},
		{"own", deadline.Middleware(time.Second, deadline.Options{})(okHandler), ""},
		{"own+header", deadline.Middleware(time.Second, deadline.Options{})(okHandler), "800"},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.hdr != "" {
				req.Header.Set(deadline.Header, tt.hdr)
			}
			loopCPU(b, func() { tt.h.ServeHTTP(discardWriter{http.Header{}}, req) })
		})
	}
}

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// measures the middleware rather than httptest.ResponseRecorder.
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}

// roundTripFunc is a Base that answers without a network, to isolate what
// Transport adds.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func BenchmarkTransport(b *testing.B) {
	resp := &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { return resp, nil })
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	tests := []struct {
		name string
		rt   http.RoundTripper
		ctx  context.Context
	}{
		{"bare", base, ctx},
		{"deadline", &deadline.Transport{Base: base}, ctx},
		{"no-deadline", &deadline.Transport{Base: base}, context.Background()},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			req, _ := http.NewRequestWithContext(tt.ctx, http.MethodPost, "http://svc/v1/x", strings.NewReader(""))
			req.Header.Set("Content-Type", "application/json")
			loopCPU(b, func() {
				if _, err := tt.rt.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkHop is one real loopback HTTP call, with and without the
// middleware on the server and the transport on the client: the overhead in
// the context it will actually run in.
func BenchmarkHop(b *testing.B) {
	for _, with := range []bool{false, true} {
		name := "bare"
		if with {
			name = "deadline"
		}
		b.Run(name, func(b *testing.B) {
			var h http.Handler = okHandler
			if with {
				h = deadline.Middleware(time.Second, deadline.Options{})(h)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			rt := srv.Client().Transport
			if with {
				rt = &deadline.Transport{Base: rt}
			}
			client := &http.Client{Transport: rt}
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			loopCPU(b, func() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			})
		})
	}
}
