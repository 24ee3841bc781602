package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow/store/sqlite"
	"github.com/orderflow/orderflow/telemetry"
)

// TestBackPressure saturates a deliberately slow store, whose write queue
// (16) is shorter than the 64 concurrent callback senders, and a small apply
// pool: the callback endpoint must answer 429 or 503 with Retry-After
// instead of queueing without bound, goroutines and heap must stay bounded,
// and every callback that got a 2xx must be applied. (The SQLite store
// applies a callback in the write that records it, so the write queue, not
// the pool, is what fills.)
func TestBackPressure(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a slow store")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"),
		sqlite.WithCommitDelay(20*time.Millisecond), sqlite.WithQueueSize(16))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("bp-secret")
	addrs := make(chan string, 2)
	a := &app{
		cfg: config{Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Workers: 2, QueueSize: 4,
			ShutdownTimeout: 10 * time.Second, SweepInterval: 200 * time.Millisecond},
		log: telemetry.NewLogger(io.Discard, slog.LevelInfo), store: st, secrets: [][]byte{secret},
		onListen: func(name, addr string) {
			if name == "public" {
				addrs <- addr
			}
		},
	}
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	base := "http://" + <-addrs
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()

	const orders, senders = 200, 64
	ids := make([]string, orders)
	for i := range ids {
		ids[i] = createOrder(t, client, base, fmt.Sprintf("u_bp_%d", i))
	}
	baseGoroutines := runtime.NumGoroutine()

	var (
		mu         sync.Mutex
		acked      []string
		refused    atomic.Int64
		maxRoutine atomic.Int64
	)
	work := make(chan string)
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Go(func() {
			for id := range work {
				for attempt := 0; ; attempt++ {
					status, retryAfter, err := postCallbackRA(client, base, secret, id)
					if n := int64(runtime.NumGoroutine()); n > maxRoutine.Load() {
						maxRoutine.Store(n)
					}
					if err != nil {
						t.Errorf("callback %s: %v", id, err)
						return
					}
					if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
						refused.Add(1)
						if secs, err := strconv.Atoi(retryAfter); err != nil || secs < 1 {
							t.Errorf("status %d with Retry-After %q", status, retryAfter)
						}
						time.Sleep(20 * time.Millisecond) // a test cannot wait whole seconds per retry
						continue
					}
					if status/100 != 2 {
						t.Errorf("callback %s: status %d", id, status)
						return
					}
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
					break
				}
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	t.Logf("%d acknowledged, %d refused with 429/503, goroutines %d at rest, %d at most during the flood",
		len(acked), refused.Load(), baseGoroutines, maxRoutine.Load())
	if refused.Load() == 0 {
		t.Error("a full write queue on a slow store never pushed back")
	}
	// Per sender: the sender itself, the client connection's read and write
	// loops, the server's connection goroutine, and slack for one replaced
	// connection. The bound depends on the senders, not on how many requests
	// were refused: refused work is not parked anywhere. One more per
	// sender for the deadline middleware, whose time.AfterFunc runs the
	// expiry on a goroutine of its own when a slow request's budget ends.
	if limit := int64(baseGoroutines + 6*senders); maxRoutine.Load() > limit {
		t.Errorf("goroutines peaked at %d, want ≤ %d", maxRoutine.Load(), limit)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, id := range acked {
		for {
			var o orderView
			getJSON(t, client, base+"/v1/orders/"+id, &o)
			if o.Version == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("order %s acknowledged but not applied: %+v", id, o)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func postCallbackRA(c *http.Client, base string, secret []byte, id string) (int, string, error) {
	body, sig := signCallback(secret, id, "risk.decided", "approve", 0.1)
	req, err := http.NewRequest(http.MethodPost, base+"/v1/risk/callbacks", bytesReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Orderflow-Signature", sig)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_ = drain(resp)
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}
