package order_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/workerpool"
)

// watchedStore is the real store with ApplyCallbacks watched: it records the
// most applies ever running at once for one order.
type watchedStore struct {
	orderflow.OrderStore
	mu      sync.Mutex
	running map[string]int
	maxSeen atomic.Int64
	calls   atomic.Int64
}

func (w *watchedStore) ApplyCallbacks(ctx context.Context, id string) (int, error) {
	w.mu.Lock()
	w.running[id]++
	if n := int64(w.running[id]); n > w.maxSeen.Load() {
		w.maxSeen.Store(n)
	}
	w.mu.Unlock()
	w.calls.Add(1)
	defer func() {
		w.mu.Lock()
		w.running[id]--
		w.mu.Unlock()
	}()
	time.Sleep(time.Millisecond) // widen the window a second apply would race in
	return w.OrderStore.ApplyCallbacks(ctx, id)
}

// TestScheduleIsSerialPerOrder hammers Schedule for a few orders from many
// goroutines: applies of one order never overlap, and a burst of Schedules
// collapses into a few applies instead of one each.
func TestScheduleIsSerialPerOrder(t *testing.T) {
	base := mustOpen(t, workerpool.Config{Workers: 8, QueueSize: 64}, nil)
	ws := &watchedStore{OrderStore: base.store, running: map[string]int{}}
	svc, err := order.New(order.Config{Store: ws, Pool: base.pool})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ids []string
	for i := 0; i < 4; i++ {
		o, _, err := svc.Create(ctx, newOrder(fmt.Sprint("u_", i)), "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.ID)
	}
	const goroutines, perG = 16, 50
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Go(func() {
			for i := 0; i < perG; i++ {
				svc.Schedule(ids[(g+i)%len(ids)])
			}
		})
	}
	wg.Wait()
	// Record the verdicts too: each lands while applies may be running.
	for _, id := range ids {
		if _, err := svc.RecordCallback(ctx, callback(id, orderflow.EventRiskDecided, orderflow.DecisionApprove)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		waitStatus(t, svc, id, orderflow.StatusApproved)
	}
	deadline := time.Now().Add(10 * time.Second)
	for svc.Stats().Applying != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("applies never drained: %+v", svc.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if m := ws.maxSeen.Load(); m != 1 {
		t.Errorf("up to %d applies of one order ran at once, want 1", m)
	}
	if c := ws.calls.Load(); c >= goroutines*perG {
		t.Errorf("%d applies for %d Schedules: bursts did not collapse", c, goroutines*perG)
	}
	t.Logf("%d Schedules + %d records → %d applies, deferred %d", goroutines*perG, len(ids), ws.calls.Load(), svc.Stats().Deferred)
}
