package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi"
)

// BenchmarkCallback measures POST /v1/risk/callbacks end to end over
// loopback: sign (client side), verify, strict decode, validate, admission
// and the durable record in the real SQLite store (WAL, synchronous=FULL,
// group commit). Accepted: every request is a new key, so every one is a
// committed write. Duplicate: the same callback again, answered from the
// inbox. Parallel runs 16 senders, which is what lets group commit share
// fsyncs.
func BenchmarkCallback(b *testing.B) {
	for _, bc := range []struct {
		name      string
		duplicate bool
		parallel  bool
	}{
		{"Accepted/Serial", false, false},
		{"Accepted/Parallel16", false, true},
		{"Duplicate/Serial", true, false},
		{"Duplicate/Parallel16", true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newServer(b, serverOpts{})
			n := b.N
			if bc.duplicate {
				n = 1
			}
			ids := precreate(b, s, n)
			if bc.duplicate {
				body := callbackBody(ids[0], "risk.decided", "approve", 0.5, "v3")
				if r := postSigned(b, s, body); r != http.StatusAccepted {
					b.Fatalf("first callback: %d", r)
				}
			}
			var next atomic.Int64
			one := func() {
				i := next.Add(1) - 1
				id, want := ids[0], http.StatusOK
				if !bc.duplicate {
					id, want = ids[i], http.StatusAccepted
				}
				if r := postSigned(b, s, callbackBody(id, "risk.decided", "approve", 0.5, "v3")); r != want {
					b.Errorf("callback %d: %d, want %d", i, r, want)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			if bc.parallel {
				b.SetParallelism(8) // 8 × GOMAXPROCS(2) = 16 senders
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						one()
					}
				})
			} else {
				for range b.N {
					one()
				}
			}
		})
	}
}

// postSigned signs and posts body as the risk engine's client would.
func postSigned(b *testing.B, s *server, body []byte) int {
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/risk/callbacks", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Orderflow-Signature", httpapi.Sign(secret, s.now, body))
	res, err := s.Client().Do(req)
	if err != nil {
		b.Error(err)
		return 0
	}
	_, _ = bytes.NewBuffer(nil).ReadFrom(res.Body)
	res.Body.Close()
	return res.StatusCode
}

// precreate makes n orders straight through the service, 16 at a time.
func precreate(b *testing.B, s *server, n int) []string {
	b.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				o, _, err := s.svc.Create(context.Background(), orderflow.NewOrder{UserID: fmt.Sprint("u_", i%50), AmountMinor: 100,
					Currency: "CNY", Region: "r", Items: []orderflow.Item{{SKU: "s", Qty: 1}}}, "")
				if err != nil {
					b.Error(err)
					continue
				}
				ids[i] = o.ID
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return ids
}
