package httpclient_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/httpclient"
)

// Build the one kind of client the project uses, add a layer, make a few
// requests and read the accounting.
func ExampleNew() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()

	userAgent := func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			r = r.Clone(r.Context())
			r.Header.Set("User-Agent", "orderflow")
			return next.RoundTrip(r)
		})
	}
	c := httpclient.New(httpclient.Config{
		Name: "callback",
		Wrap: []func(http.RoundTripper) http.RoundTripper{userAgent},
	})
	defer c.CloseIdleConnections()
	prometheus.NewRegistry().MustRegister(c.Collector())

	for range 3 {
		resp, err := c.Get(srv.URL)
		if err != nil {
			fmt.Println(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close() // forget this and OpenBodies stays above zero
	}
	s := c.Stats()
	fmt.Printf("new=%d reused=%d open bodies=%d\n", s.ConnsNew, s.ConnsReused, s.OpenBodies)
	// Output: new=1 reused=2 open bodies=0
}
