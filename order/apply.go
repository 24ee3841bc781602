package order

import (
	"context"
	"errors"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/workerpool"
)

// Schedule asks for orderID's recorded callbacks to be applied. Per order it
// is "run or mark dirty": at most one apply for an order is queued or running
// at a time, and a Schedule that arrives meanwhile makes it run once more
// when it finishes, so callbacks apply in arrival order without two workers
// racing on one order's version.
//
// It never blocks and never starts a goroutine: the apply goes to the pool
// with TrySubmit. When the pool is full the callback stays recorded and the
// sweeper applies it within SweepInterval.
func (s *Service) Schedule(orderID string) {
	if !s.claim(orderID) {
		return
	}
	err := s.pool.TrySubmit(func(ctx context.Context) { s.drain(ctx, orderID) })
	if err != nil {
		s.release(orderID)
		s.deferred.Add(1)
		if !errors.Is(err, workerpool.ErrFull) && !errors.Is(err, workerpool.ErrClosed) {
			s.log.Warn("schedule apply", "order_id", orderID, "err", err)
		}
	}
}

// claim marks orderID as having an apply in flight and reports whether the
// caller must run it; false means one is in flight already and is now told
// to run again.
func (s *Service) claim(orderID string) bool {
	s.schedMu.Lock()
	defer s.schedMu.Unlock()
	if _, running := s.sched[orderID]; running {
		s.sched[orderID] = true
		return false
	}
	s.sched[orderID] = false
	return true
}

// release forgets orderID's claim when its apply could not be queued. A
// dirty mark set meanwhile is dropped with it: the sweeper will see the
// unapplied entry.
func (s *Service) release(orderID string) {
	s.schedMu.Lock()
	delete(s.sched, orderID)
	s.schedMu.Unlock()
}

// drain applies orderID's inbox until no Schedule asked for more while it
// ran. ctx is the pool's (or the sweeper's): it ends only at shutdown.
func (s *Service) drain(ctx context.Context, orderID string) {
	for {
		s.apply(ctx, orderID)
		s.schedMu.Lock()
		if s.sched[orderID] && ctx.Err() == nil {
			s.sched[orderID] = false
			s.schedMu.Unlock()
			continue
		}
		delete(s.sched, orderID)
		s.schedMu.Unlock()
		return
	}
}

// apply runs ApplyCallbacks for one order, retrying a version race a few
// times. Failures are logged, not returned: the entries stay unapplied and
// the sweeper tries again.
func (s *Service) apply(ctx context.Context, orderID string) {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
		_, err := s.store.ApplyCallbacks(actx, orderID)
		cancel()
		switch {
		case err == nil:
			return
		case orderflow.ErrorCode(err) == orderflow.EConflict && attempt < applyConflictRetries && ctx.Err() == nil:
			continue
		case orderflow.ErrorCode(err) == orderflow.ENotFound:
			return // nothing to apply to; not worth a warning
		default:
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "apply callbacks", "order_id", orderID, "attempt", attempt, "err", err)
			}
			return
		}
	}
}

// Run is the sweeper. It applies whatever recorded callbacks are unapplied
// at once (what a crash or a full pool left behind), then again every
// SweepInterval, and deletes expired idempotency keys every PruneInterval.
// It blocks until ctx ends, then returns nil; call it on a goroutine that the
// caller owns and waits for.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	var lastPrune time.Time
	for {
		s.Sweep(ctx)
		if now := s.now(); now.Sub(lastPrune) >= s.cfg.PruneInterval {
			lastPrune = now
			s.prune(ctx, now)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep makes one pass over orders with unapplied callbacks: each is handed
// to the pool, or applied on the calling goroutine when the pool is full, so
// the sweep makes progress under any load. Orders with an apply already in
// flight are only marked to run again. It returns how many orders it took up.
func (s *Service) Sweep(ctx context.Context) int {
	ids, err := s.store.UnappliedOrders(ctx, s.cfg.SweepBatch)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "sweep: list unapplied orders", "err", err)
		}
		return 0
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		if !s.claim(id) {
			continue
		}
		err := s.pool.TrySubmit(func(ctx context.Context) { s.drain(ctx, id) })
		if err != nil {
			s.drain(ctx, id)
		}
	}
	return len(ids)
}

func (s *Service) prune(ctx context.Context, now time.Time) {
	n, err := s.store.PruneIdempotencyKeys(ctx, now)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.WarnContext(ctx, "prune idempotency keys", "err", err)
	case n > 0:
		s.log.DebugContext(ctx, "pruned idempotency keys", "n", n)
	}
}

// Stats is a snapshot of the service's own counters, for metrics and tests.
type Stats struct {
	InFlight int64 // creates and callback records running now
	Applying int64 // orders with an apply queued or running
	Deferred int64 // applies left to the sweeper because the pool was full (cumulative)
}

// Stats returns a snapshot of the service's counters.
func (s *Service) Stats() Stats {
	s.schedMu.Lock()
	applying := int64(len(s.sched))
	s.schedMu.Unlock()
	return Stats{InFlight: s.inflight.Load(), Applying: applying, Deferred: s.deferred.Load()}
}
