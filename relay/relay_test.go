package relay_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/lock/local"
	"github.com/orderflow/orderflow/relay"
	"github.com/orderflow/orderflow/store/postgres"
	"github.com/orderflow/orderflow/store/storetest"
)

// recorder is the bus of these tests: it keeps every event published, in
// order, and how many times each id came. bus/redisstream's own suite tests
// the real publisher; here the subject is the relay's choice of what to
// publish and mark.
type recorder struct {
	mu    sync.Mutex
	seen  map[string]int
	order []string
	// gate, when set, is received from before each Publish returns: a paused
	// relay.
	gate chan struct{}
}

func newRecorder() *recorder { return &recorder{seen: map[string]int{}} }

func (r *recorder) Publish(ctx context.Context, evs []orderflow.Event) error {
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range evs {
		r.seen[e.OrderID]++
		r.order = append(r.order, e.OrderID)
	}
	return nil
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[id]
}

func create(t *testing.T, s *postgres.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, _, err := s.CreateOrder(context.Background(), storetest.NewOrder(id, "u_1", time.Now()), storetest.NewEvent(id), nil); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func unpublished(t *testing.T, s *postgres.Store) int {
	t.Helper()
	evs, err := s.UnpublishedEvents(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// start runs r until the test ends.
func start(t *testing.T, r *relay.Relay) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func mustNew(t *testing.T, cfg relay.Config) *relay.Relay {
	t.Helper()
	r, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRelayPublishesEverything: three competing relays, orders written
// concurrently while they run; every event is published and marked, and
// only one relay leads at a time.
func TestRelayPublishesEverything(t *testing.T) {
	s := openStore(t)
	rec := newRecorder()
	locker := local.New()
	var ms []*relay.Metrics
	for range 3 {
		m := relay.NewMetrics()
		ms = append(ms, m)
		start(t, mustNew(t, relay.Config{Outbox: s, Publisher: rec, Locker: locker, Batch: 16, Poll: 5 * time.Millisecond, Metrics: m, ReconcileAfter: -1}))
	}
	const writers, per = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				create(t, s, fmt.Sprintf("ord_%d_%d", w, i))
			}
		})
	}
	wg.Wait()
	waitFor(t, "every event marked", func() bool { return unpublished(t, s) == 0 })
	for w := range writers {
		for i := range per {
			if id := fmt.Sprintf("ord_%d_%d", w, i); rec.count(id) != 1 {
				t.Errorf("%s published %d times, want 1 (one relay, no failure)", id, rec.count(id))
			}
		}
	}
	var leaders, published float64
	for _, m := range ms {
		leaders += testutil.ToFloat64(m.Leader)
		published += testutil.ToFloat64(m.Published)
	}
	if leaders != 1 || published != writers*per {
		t.Errorf("leaders = %v, published = %v; want 1, %d", leaders, published, writers*per)
	}
}

// frozenLocker hands out one lease with token 1 whose Done never closes: a
// holder paused (GC, SIGSTOP) long enough for its lease to expire without
// noticing. A second Acquire blocks until ctx ends.
type frozenLocker struct{ n int }

func (f *frozenLocker) Acquire(ctx context.Context, key string, ttl time.Duration) (orderflow.Lease, error) {
	f.n++
	if f.n > 1 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return frozenLease{}, nil
}

type frozenLease struct{}

func (frozenLease) Token() uint64                 { return 1 }
func (frozenLease) Done() <-chan struct{}         { return nil }
func (frozenLease) Release(context.Context) error { return nil }

// TestRelayFencedStaleHolder: relay A claims the outbox with token 1, reads a
// batch and is paused inside Publish. Relay B takes over with a newer
// token and publishes everything. When A resumes, its MarkPublished is
// refused: A stops (fenced) without marking, and nothing B marked is undone.
func TestRelayFencedStaleHolder(t *testing.T) {
	s := openStore(t)
	create(t, s, "ord_a", "ord_b", "ord_c")

	gate := make(chan struct{})
	stale := newRecorder()
	stale.gate = gate
	ma := relay.NewMetrics()
	start(t, mustNew(t, relay.Config{Outbox: s, Publisher: stale, Locker: &frozenLocker{}, Metrics: ma, ReconcileAfter: -1, PublishTimeout: time.Minute}))
	waitFor(t, "A leading", func() bool { return testutil.ToFloat64(ma.Leader) == 1 })
	time.Sleep(50 * time.Millisecond) // A is now blocked in Publish with the batch

	fresh := newRecorder()
	mb := relay.NewMetrics()
	start(t, mustNew(t, relay.Config{Outbox: s, Publisher: fresh, Locker: local.New(), Metrics: mb, ReconcileAfter: -1}))
	waitFor(t, "B published", func() bool { return unpublished(t, s) == 0 })
	create(t, s, "ord_d") // B keeps leading
	waitFor(t, "B marked ord_d", func() bool { return unpublished(t, s) == 0 })

	close(gate) // A resumes and tries to mark its batch
	waitFor(t, "A fenced", func() bool { return testutil.ToFloat64(ma.Fenced) == 1 })
	if got := testutil.ToFloat64(ma.Published); got != 0 {
		t.Errorf("stale relay marked %v events, want 0", got)
	}
	if got := testutil.ToFloat64(ma.Leader); got != 0 {
		t.Errorf("stale relay still leading after being fenced")
	}
	for _, id := range []string{"ord_a", "ord_b", "ord_c", "ord_d"} {
		if fresh.count(id) != 1 {
			t.Errorf("%s published %d times by the new leader, want 1", id, fresh.count(id))
		}
	}
	if n := unpublished(t, s); n != 0 {
		t.Errorf("%d events unpublished after the fenced write", n)
	}
}

// handLease is a lease the test ends by closing lost.
type handLease struct {
	tok  uint64
	lost chan struct{}
}

func (l *handLease) Token() uint64                 { return l.tok }
func (l *handLease) Done() <-chan struct{}         { return l.lost }
func (l *handLease) Release(context.Context) error { return nil }

type handLocker struct{ leases chan *handLease }

func (h *handLocker) Acquire(ctx context.Context, key string, ttl time.Duration) (orderflow.Lease, error) {
	select {
	case l := <-h.leases:
		return l, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestRelayStopsWhenLeaseLost: once Done closes the relay publishes nothing
// more until it holds a lease again.
func TestRelayStopsWhenLeaseLost(t *testing.T) {
	s := openStore(t)
	rec := newRecorder()
	hl := &handLocker{leases: make(chan *handLease, 1)}
	first := &handLease{tok: 10, lost: make(chan struct{})}
	hl.leases <- first
	m := relay.NewMetrics()
	start(t, mustNew(t, relay.Config{Outbox: s, Publisher: rec, Locker: hl, Poll: 5 * time.Millisecond, Metrics: m, ReconcileAfter: -1}))
	create(t, s, "ord_1")
	waitFor(t, "ord_1 published", func() bool { return rec.count("ord_1") == 1 })

	close(first.lost)
	waitFor(t, "leadership dropped", func() bool { return testutil.ToFloat64(m.Leader) == 0 })
	create(t, s, "ord_2")
	time.Sleep(100 * time.Millisecond)
	if rec.count("ord_2") != 0 {
		t.Fatal("published after the lease was lost")
	}
	hl.leases <- &handLease{tok: 11, lost: make(chan struct{})}
	waitFor(t, "ord_2 published under the new lease", func() bool { return rec.count("ord_2") == 1 })
}

// TestReconcilerRepublishes: an order whose event was published but never
// decided (the bus lost it) is published again after ReconcileAfter; a
// decided one is not.
func TestReconcilerRepublishes(t *testing.T) {
	s := openStore(t)
	rec := newRecorder()
	create(t, s, "ord_lost", "ord_decided")
	c := storetest.NewCallback("ord_decided", orderflow.EventRiskDecided, orderflow.DecisionApprove, 0.1, "v2.1")
	if _, err := s.RecordCallback(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	m := relay.NewMetrics()
	start(t, mustNew(t, relay.Config{Outbox: s, Publisher: rec, Locker: local.New(), Poll: 5 * time.Millisecond, Metrics: m,
		ReconcileAfter: 200 * time.Millisecond, ReconcileEvery: 50 * time.Millisecond}))
	waitFor(t, "ord_lost published twice", func() bool { return rec.count("ord_lost") >= 2 })
	if got := rec.count("ord_decided"); got != 1 {
		t.Errorf("decided order published %d times, want 1", got)
	}
	if testutil.ToFloat64(m.Republished) < 1 {
		t.Error("republished counter not moved")
	}
}
