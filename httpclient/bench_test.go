package httpclient_test

import (
	"io"
	"net/http"
	"runtime"
	"testing"

	"github.com/orderflow/orderflow/httpclient"
)

// BenchmarkClient64 compares the standard library's default client (two idle
// connections per host) with ours at 64 concurrent requests against a
// loopback server. ns/op is wall time per request over all goroutines, so
// requests/s = 1e9 / ns/op; conns is the TCP connections the server
// accepted during the run (not per op), conns/kreq the same per thousand
// requests.
func BenchmarkClient64(b *testing.B) {
	const concurrency = 64
	clients := []struct {
		name string
		new  func() (*http.Client, func())
	}{
		{"stdlib-default", func() (*http.Client, func()) {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			return &http.Client{Transport: tr}, tr.CloseIdleConnections
		}},
		{"httpclient", func() (*http.Client, func()) {
			c := httpclient.New(httpclient.Config{})
			return c.Client, c.CloseIdleConnections
		}},
	}
	for _, cl := range clients {
		b.Run(cl.name, func(b *testing.B) {
			srv, accepted := newServer(b, nil)
			c, closeIdle := cl.new()
			defer closeIdle()
			b.SetParallelism(max(1, concurrency/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Get(srv.URL)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(accepted.Load())*1000/float64(b.N), "conns/kreq")
			b.ReportMetric(float64(accepted.Load()), "conns")
		})
	}
}
