// Package relay copies the distributed mode's outbox into the bus: one active
// relay among all order replicas, chosen by a lock, publishes what the outbox
// holds unpublished and marks it published under the lease's fencing token.
//
// Safety does not rest on the lock. A relay that lost its lease without
// noticing (a GC pause, a partition, SIGSTOP) may still publish a batch its
// successor publishes too: the bus drops an event id it already finished and
// consumers are idempotent, so a duplicate is harmless. What must not happen
// is the stale relay marking rows after its successor did, and the store's
// MarkPublished refuses a token older than the newest it has seen: the stale
// relay gets a conflict, stops, and queues for the lock again.
//
// The leader also runs the reconciler: orders still undecided a while after
// their event was published get the event put back on the outbox's work list,
// so a Redis that restarted empty loses no order.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/orderflow/orderflow"
)

// DefaultKey is the lock the relays of one outbox compete for.
const DefaultKey = "outbox-relay"

// Outbox is the relay's view of the order store (store/postgres.Store).
type Outbox interface {
	// UnpublishedEvents returns up to limit events not marked published,
	// lowest seq first, however late they committed.
	UnpublishedEvents(ctx context.Context, limit int) ([]orderflow.Event, error)
	// MarkPublished marks seqs published unless fencingToken is older than
	// the newest token it accepted; then it is a conflict and marks nothing.
	MarkPublished(ctx context.Context, seqs []int64, fencingToken uint64) error
}

// Reconciler is the optional capability of an Outbox to put the events of
// orders still undecided back on its work list (store/postgres.Store has it).
type Reconciler interface {
	RepublishUndecided(ctx context.Context, publishedBefore time.Time, limit int) (int64, error)
}

// Publisher appends events to the bus (bus/redisstream's publisher). It may
// return before a consumer sees them but not before the bus holds them; a
// publish repeated after a crash must not deliver an event twice to a group
// that already finished it (dedup by event id), or consumers must tolerate it.
type Publisher interface {
	Publish(ctx context.Context, evs []orderflow.Event) error
}

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(ctx context.Context, evs []orderflow.Event) error

// Publish calls f.
func (f PublisherFunc) Publish(ctx context.Context, evs []orderflow.Event) error { return f(ctx, evs) }

// Config configures a Relay. Outbox, Publisher and Locker are required; the
// zero value of every other field is a sensible default.
type Config struct {
	Outbox    Outbox
	Publisher Publisher
	Locker    orderflow.Locker
	// Key is the lock name; DefaultKey when empty. Relays of one outbox must
	// share it.
	Key string
	// TTL of the lease; 10 s when 0. A relay that dies holds the outbox up
	// for at most about this long.
	TTL time.Duration
	// Batch is the most events read, published and marked at once; 256 when 0.
	Batch int
	// Poll is how long an idle leader waits before looking again when no
	// Notify arrives (another replica created the order); 50 ms when 0.
	Poll time.Duration
	// PublishTimeout bounds one Publish and one MarkPublished; 5 s when 0.
	PublishTimeout time.Duration
	// ReconcileAfter is how long after its event was published an order may
	// stay undecided before the event is published again; 0 means 1 minute,
	// negative disables the reconciler. It must be well below the outbox
	// retention (pruned events are not restored).
	ReconcileAfter time.Duration
	// ReconcileEvery is how often the leader reconciles; ReconcileAfter/4
	// when 0.
	ReconcileEvery time.Duration
	Logger         *slog.Logger
	// Metrics, when set, counts what the relay does.
	Metrics *Metrics
	// Now is the clock of the reconciler; time.Now when nil.
	Now func() time.Time
}

// Relay is one candidate relay. Run it in every order replica; only the
// lease holder publishes.
type Relay struct {
	cfg  Config
	wake chan struct{}
}

// New checks cfg and returns a Relay.
func New(cfg Config) (*Relay, error) {
	if cfg.Outbox == nil || cfg.Publisher == nil || cfg.Locker == nil {
		return nil, errors.New("relay: Outbox, Publisher and Locker are required")
	}
	if cfg.Key == "" {
		cfg.Key = DefaultKey
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 50 * time.Millisecond
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 5 * time.Second
	}
	if cfg.ReconcileAfter == 0 {
		cfg.ReconcileAfter = time.Minute
	}
	if cfg.ReconcileEvery <= 0 {
		cfg.ReconcileEvery = max(cfg.ReconcileAfter/4, 100*time.Millisecond)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	return &Relay{cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// Notify wakes an idle leader: call it after committing an event in this
// process, so it is published at once rather than at the next poll.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// ErrFenced is returned (wrapped) by a term that the store refused: a newer
// lease exists, this relay stopped publishing.
var ErrFenced = errors.New("relay: fenced by a newer lease")

// Run competes for the lock and relays while it holds it, until ctx ends;
// then it returns nil. A lost lease or a refused token ends the term and
// the relay queues for the lock again.
func (r *Relay) Run(ctx context.Context) error {
	log := r.cfg.Logger.With("lock", r.cfg.Key)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		lease, err := r.cfg.Locker.Acquire(ctx, r.cfg.Key, r.cfg.TTL)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			log.Warn("relay: acquire failed", "err", err)
			sleep(ctx, jitter(backoff))
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		log.Info("relay: leading", "token", lease.Token())
		r.cfg.Metrics.Leader.Set(1)
		err = r.lead(ctx, lease)
		r.cfg.Metrics.Leader.Set(0)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = lease.Release(rctx) // refused when the lease was lost already: nothing to give up
		cancel()
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, ErrFenced):
			r.cfg.Metrics.Fenced.Inc()
			log.Warn("relay: fenced, queueing again", "token", lease.Token(), "err", err)
		default:
			log.Warn("relay: term ended", "token", lease.Token(), "err", err)
			// A failing store or bus: do not spin through leases.
			sleep(ctx, jitter(time.Second))
		}
	}
	return nil
}

// lead is one term: it returns when the lease is lost, the store refuses
// the token (ErrFenced), or ctx ends.
func (r *Relay) lead(parent context.Context, lease orderflow.Lease) error {
	ctx, cancel := context.WithCancelCause(parent)
	var wg sync.WaitGroup
	defer func() { cancel(nil); wg.Wait() }() // the watcher ends once ctx does
	wg.Go(func() {
		select {
		case <-lease.Done():
			cancel(errLeaseLost)
		case <-ctx.Done():
		}
	})

	tok := lease.Token()
	// Claim the outbox first: from this write on, the previous holder's
	// marks are refused even if it still believes it leads.
	if err := r.mark(ctx, nil, tok); err != nil {
		return r.termErr(ctx, err)
	}
	nextReconcile := r.cfg.Now().Add(r.cfg.ReconcileEvery)
	failures := 0
	for ctx.Err() == nil {
		n, err := r.step(ctx, tok)
		if err != nil {
			if errors.Is(err, ErrFenced) || ctx.Err() != nil {
				return r.termErr(ctx, err)
			}
			failures++
			r.cfg.Logger.Warn("relay: step failed", "err", err, "failures", failures)
			if failures >= 5 {
				return err // let another replica, perhaps better connected, lead
			}
			sleep(ctx, jitter(time.Duration(failures)*100*time.Millisecond))
			continue
		}
		failures = 0
		if now := r.cfg.Now(); r.cfg.ReconcileAfter > 0 && !now.Before(nextReconcile) {
			nextReconcile = now.Add(r.cfg.ReconcileEvery)
			r.reconcile(ctx, now)
			continue
		}
		if n == r.cfg.Batch {
			continue // more is waiting
		}
		t := time.NewTimer(r.cfg.Poll)
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
	return r.termErr(ctx, nil)
}

var errLeaseLost = errors.New("relay: lease lost")

func (r *Relay) termErr(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return err
}

// step publishes one batch and marks it; it returns how many events.
func (r *Relay) step(ctx context.Context, tok uint64) (int, error) {
	evs, err := r.cfg.Outbox.UnpublishedEvents(ctx, r.cfg.Batch)
	if err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	if len(evs) == 0 {
		return 0, nil
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	err = r.cfg.Publisher.Publish(pctx, evs)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("publish %d events: %w", len(evs), err)
	}
	seqs := make([]int64, len(evs))
	for i, e := range evs {
		seqs[i] = e.Seq
	}
	if err := r.mark(ctx, seqs, tok); err != nil {
		return 0, err
	}
	r.cfg.Metrics.Published.Add(float64(len(evs)))
	now := r.cfg.Now()
	for _, e := range evs {
		r.cfg.Metrics.Lag.Observe(now.Sub(e.CreatedAt).Seconds())
	}
	return len(evs), nil
}

func (r *Relay) mark(ctx context.Context, seqs []int64, tok uint64) error {
	mctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	err := r.cfg.Outbox.MarkPublished(mctx, seqs, tok)
	if orderflow.ErrorCode(err) == orderflow.EConflict {
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	if err != nil {
		return fmt.Errorf("mark published: %w", err)
	}
	return nil
}

func (r *Relay) reconcile(ctx context.Context, now time.Time) {
	rc, ok := r.cfg.Outbox.(Reconciler)
	if !ok {
		return
	}
	n, err := rc.RepublishUndecided(ctx, now.Add(-r.cfg.ReconcileAfter), r.cfg.Batch)
	if err != nil {
		r.cfg.Logger.Warn("relay: reconcile failed", "err", err)
		return
	}
	if n > 0 {
		r.cfg.Metrics.Republished.Add(float64(n))
		r.cfg.Logger.Warn("relay: republishing events of undecided orders", "orders", n, "after", r.cfg.ReconcileAfter)
	}
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
