package sqlbus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/bus/bustest"
	"github.com/orderflow/orderflow/bus/sqlbus"
	"github.com/orderflow/orderflow/store/sqlite"
)

// run starts Consume in the background; stop cancels it and returns its
// result.
func run(t *testing.T, b *sqlbus.Bus, group string, h orderflow.Handler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Consume(ctx, group, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Consume did not return within 30s of its context ending")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// A failed delivery counts after a restart: the next delivery is Attempt 2,
// and the limit is reached across restarts, not per process.
func TestAttemptsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	st := MustOpen(t)
	ev := bustest.Event("o1", 0)
	if err := publish(ctx, st, ev); err != nil {
		t.Fatal(err)
	}
	// A back-off far longer than the test: the retry is never due in-process.
	cfg := sqlbus.Config{MaxDeliveries: 3, BackoffBase: time.Hour, BackoffMax: time.Hour, PollInterval: 5 * time.Millisecond}
	for restart, want := range []int{1, 2, 3} {
		var got atomic.Int64
		stop := run(t, sqlbus.New(st, cfg), "risk", func(_ context.Context, d orderflow.Delivery) error {
			got.Store(int64(d.Attempt))
			return errors.New("downstream down")
		})
		waitUntil(t, "a delivery", func() bool { return got.Load() != 0 })
		if err := stop(); err != nil {
			t.Fatalf("Consume: %v", err)
		}
		if int(got.Load()) != want {
			t.Fatalf("after %d restarts the delivery was Attempt %d, want %d", restart, got.Load(), want)
		}
	}
	dls, err := sqlbus.New(st, cfg).DeadLetters(ctx, 10)
	if err != nil || len(dls) != 1 || dls[0].Attempts != 3 || dls[0].Event.ID != ev.ID {
		t.Fatalf("DeadLetters = %+v, %v; want %s with 3 attempts", dls, err, ev.ID)
	}
}

// A handler already running when Consume's context ends may finish within
// the grace period, and its ack is written before Consume returns; one that
// outlasts the grace has its context cancelled.
func TestShutdownGrace(t *testing.T) {
	ctx := context.Background()
	st := MustOpen(t)
	if err := publish(ctx, st, bustest.Event("slow", 0), bustest.Event("stuck", 1)); err != nil {
		t.Fatal(err)
	}
	cfg := sqlbus.Config{ShutdownGrace: 300 * time.Millisecond, PollInterval: 5 * time.Millisecond}
	var entered sync.WaitGroup
	entered.Add(2)
	var slowDone atomic.Bool
	stuckErr := make(chan error, 1)
	stop := run(t, sqlbus.New(st, cfg), "risk", func(hctx context.Context, d orderflow.Delivery) error {
		entered.Done()
		if d.OrderID == "slow" {
			time.Sleep(100 * time.Millisecond) // well within the grace
			slowDone.Store(hctx.Err() == nil)
			return nil
		}
		<-hctx.Done()
		stuckErr <- hctx.Err()
		return hctx.Err()
	})
	entered.Wait()
	if err := stop(); err != nil {
		t.Fatalf("Consume: %v", err)
	}
	if !slowDone.Load() {
		t.Error("the slow handler's context was cancelled within the grace period")
	}
	if err := <-stuckErr; !errors.Is(err, context.Canceled) {
		t.Errorf("stuck handler's context ended with %v, want Canceled after the grace", err)
	}
	// After a restart only the stuck event comes back.
	var mu sync.Mutex
	var again []string
	stop = run(t, sqlbus.New(st, cfg), "risk", func(_ context.Context, d orderflow.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		again = append(again, d.OrderID)
		return nil
	})
	if err := publish(ctx, st, bustest.Event("marker", 2)); err != nil {
		t.Fatal(err)
	}
	// The two are of different orders, so they may come in either order.
	waitUntil(t, "the marker and the stuck event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(again, "marker") && slices.Contains(again, "stuck")
	})
	_ = stop()
	if slices.Sort(again); !slices.Equal(again, []string{"marker", "stuck"}) {
		t.Errorf("after the restart delivered %v, want marker and stuck once each (slow was acked)", again)
	}
}

// A panicking handler fails its delivery; the event comes back.
func TestHandlerPanicIsAFailure(t *testing.T) {
	st := MustOpen(t)
	if err := publish(context.Background(), st, bustest.Event("o1", 0)); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Logger = quiet()
	var attempts atomic.Int64
	b := sqlbus.New(st, cfg)
	stop := run(t, b, "risk", func(_ context.Context, d orderflow.Delivery) error {
		if attempts.Add(1) == 1 {
			panic("scorer bug")
		}
		return nil
	})
	waitUntil(t, "the redelivery", func() bool { return attempts.Load() >= 2 })
	if err := stop(); err != nil {
		t.Fatalf("Consume: %v", err)
	}
	s := b.Stats()
	if s.Deliveries != 2 || s.Failures != 1 || s.Read != 1 || s.Polls == 0 || s.AckWrites == 0 || s.DeadLettered != 0 || s.Claims != 1 {
		t.Errorf("Stats = %+v; want 2 deliveries, 1 failure, 1 read, 1 claim (the event predates the start), polls and ack writes", s)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	st := MustOpen(t)
	old := time.Now().Add(-2 * time.Hour)
	var evs []orderflow.Event
	for i := range 10 {
		e := bustest.Event(fmt.Sprintf("o%d", i), i)
		e.CreatedAt = old
		if i >= 8 {
			e.CreatedAt = time.Now() // too young to prune
		}
		evs = append(evs, e)
	}
	if err := publish(ctx, st, evs...); err != nil {
		t.Fatal(err)
	}
	b := sqlbus.New(st, testConfig())
	count := func() (n int) {
		if err := st.ReadDB().QueryRowContext(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	prune := func(want int64) {
		t.Helper()
		n, err := b.Prune(ctx, time.Hour)
		if err != nil || n != want {
			t.Fatalf("Prune = %d, %v; want %d", n, err, want)
		}
	}
	prune(0) // no group has consumed yet: every event is still owed to the first one
	// Group risk acks everything; group audit stops at event 5.
	var risk, audit atomic.Int64
	stopRisk := run(t, b, "risk", func(context.Context, orderflow.Delivery) error { risk.Add(1); return nil })
	block := make(chan struct{})
	var unblock sync.Once
	t.Cleanup(func() { unblock.Do(func() { close(block) }) }) // runs before the stops
	stopAudit := run(t, b, "audit", func(ctx context.Context, d orderflow.Delivery) error {
		if d.ID == evs[5].ID {
			<-block
			return errors.New("stopped")
		}
		audit.Add(1)
		return nil
	})
	waitUntil(t, "both groups", func() bool { return risk.Load() == 10 && audit.Load() == 9 })
	unblock.Do(func() { close(block) })
	if err := stopAudit(); err != nil {
		t.Fatal(err)
	}
	if err := stopRisk(); err != nil {
		t.Fatal(err)
	}
	prune(5) // audit's cursor is at event 4 (the fifth)
	if n := count(); n != 5 {
		t.Fatalf("outbox has %d rows after pruning, want 5", n)
	}
	prune(0)
}

// With the store closed under it, Consume still returns once its context
// ends, reporting that its last acks were not written.
func TestStoreClosedUnderConsume(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/orderflow.db")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Logger = quiet()
	cfg.FlushInterval = time.Hour // keep the ack pending until Consume ends
	if err := publish(context.Background(), st, bustest.Event("o1", 0)); err != nil {
		t.Fatal(err)
	}
	var handled atomic.Bool
	stop := run(t, sqlbus.New(st, cfg), "risk", func(context.Context, orderflow.Delivery) error {
		handled.Store(true)
		return nil
	})
	waitUntil(t, "the delivery", handled.Load)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * cfg.PollInterval) // polls fail meanwhile, and are retried
	if err := stop(); orderflow.ErrorCode(err) != orderflow.EUnavailable {
		t.Errorf("Consume = %v, want the unavailable store's error", err)
	}
}

// A Consume whose context ended before it started returns nil at once, as
// one that ran and was stopped does.
func TestConsumeWithEndedContext(t *testing.T) {
	st := MustOpen(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := sqlbus.New(st, testConfig()).Consume(ctx, "risk", func(context.Context, orderflow.Delivery) error {
		t.Error("handler called under an ended context")
		return nil
	})
	if err != nil {
		t.Errorf("Consume = %v, want nil", err)
	}
}
