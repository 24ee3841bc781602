package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/orderflow/orderflow"
)

// op is one caller's write waiting in the queue.
type op struct {
	ctx  context.Context // the caller's values, without its cancellation
	fn   func(context.Context, *sql.Tx) error
	done chan error // buffered, so the writer never blocks on a caller that left
}

// WriteStats counts the committer's work since Open. Commits per write is the
// number of WAL fsyncs each write paid for (checkpoints add a few more).
type WriteStats struct {
	// Writes is the number of write functions the writer ran.
	Writes uint64
	// Failed is how many of them returned an error and were rolled back to
	// their savepoint, leaving the rest of their batch intact.
	Failed uint64
	// Commits is the number of COMMITs that succeeded: one fsync each.
	Commits uint64
	// CommitErrors is the number of batches whose BEGIN, SAVEPOINT or COMMIT
	// failed; their writes failed with them.
	CommitErrors uint64
	// Rejected is the number of writes refused because the queue was full.
	Rejected uint64
	// MaxBatch is the largest number of writes one commit has carried.
	MaxBatch int
	// Queued is the number of writes waiting right now.
	Queued int
}

// CommitsPerWrite is Commits/Writes: fsyncs per request, 1 without group
// commit, well under 1 with it under concurrent load. It is 0 before any
// write.
func (w WriteStats) CommitsPerWrite() float64 {
	if w.Writes == 0 {
		return 0
	}
	return float64(w.Commits) / float64(w.Writes)
}

// Stats returns the committer's counters.
func (s *Store) Stats() WriteStats {
	return WriteStats{
		Writes:       s.writes.Load(),
		Failed:       s.failed.Load(),
		Commits:      s.commits.Load(),
		CommitErrors: s.commitErrors.Load(),
		Rejected:     s.rejected.Load(),
		MaxBatch:     int(s.maxSeen.Load()),
		Queued:       len(s.queue),
	}
}

// Write runs fn in the store's write transaction and returns once that
// transaction is durable (committed and fsynced) or fn has failed. It is the
// committer that every write of the store goes through, exported so adapters
// keeping their own tables in this file share it.
//
// fn runs on the writer goroutine inside a SAVEPOINT of a transaction shared
// with other callers' writes. When fn returns an error only its own changes
// are rolled back and Write returns that error. fn must not call Write (the
// writer would wait for itself), must not end the transaction itself (a
// COMMIT or ROLLBACK in fn aborts its whole batch) and should only touch the
// database: the whole batch waits for it.
//
// Outcomes:
//   - nil: fn's changes are committed and durable.
//   - fn's error: nothing of fn's was written.
//   - resource_exhausted: the queue is full; nothing was queued, retry later.
//   - unavailable: the store is closed; nothing was queued.
//   - deadline_exceeded before queueing (ctx already done): nothing was queued.
//   - deadline_exceeded while waiting: the write WAS queued and will be
//     committed (or fail) regardless; the caller just stops waiting, so the
//     outcome is unknown to it. The error wraps ctx.Err(). fn may still run
//     after Write returned, so the caller must not read what fn writes to.
//   - internal "commit failed": the outcome is unknown; the data may or may
//     not be on disk.
//
// fn receives the caller's context values without its cancellation, because
// an op once queued runs to completion.
func (s *Store) Write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return orderflow.Wrap(orderflow.EDeadlineExceeded, err, "write not queued: context already done")
	}
	o := &op{ctx: context.WithoutCancel(ctx), fn: fn, done: make(chan error, 1)}
	if err := s.enqueue(o); err != nil {
		return err
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		select { // the result and the deadline may arrive together: prefer the result
		case err := <-o.done:
			return err
		default:
		}
		return orderflow.Wrap(orderflow.EDeadlineExceeded, ctx.Err(),
			"write queued but not yet committed; it will still be applied, outcome unknown")
	}
}

// enqueue hands o to the writer without ever blocking: a full queue is an
// immediate resource_exhausted, so callers shed load instead of piling up.
func (s *Store) enqueue(o *op) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return orderflow.Errorf(orderflow.EUnavailable, "store is closed")
	}
	select {
	case s.queue <- o:
		return nil
	default:
		s.rejected.Add(1)
		return orderflow.Errorf(orderflow.EResourceExhausted, "write queue full (%d waiting); nothing was written", cap(s.queue))
	}
}

// run is the writer goroutine, owned by the Store: Close stops it after it
// has committed everything queued.
func (s *Store) run() {
	defer close(s.stopped)
	batch := make([]*op, 0, s.maxBatch)
	var linger *time.Timer
	if s.linger > 0 {
		linger = time.NewTimer(s.linger)
		linger.Stop()
	}
	busy := false // the last batch carried more than one write
	for {
		select {
		case o := <-s.queue:
			batch = s.fill(append(batch[:0], o))
			if busy && linger != nil && len(batch) < lingerBelow(s.maxBatch) {
				batch = s.gather(batch, linger)
			}
			busy = len(batch) > 1
			s.commit(batch)
		case <-s.quit:
			// Close set closed under the write lock before quit was
			// closed, so no enqueue is in flight: what is in the queue is
			// all there will ever be.
			for {
				batch = s.fill(batch[:0])
				if len(batch) == 0 {
					return
				}
				s.commit(batch)
			}
		}
	}
}

// fill adds whatever is already queued to batch, up to maxBatch, without
// waiting: writes that arrived during the previous fsync share the next one,
// and a lone write is never delayed hoping for company.
func (s *Store) fill(batch []*op) []*op {
	for len(batch) < s.maxBatch {
		select {
		case o := <-s.queue:
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

// lingerBelow is the batch size from which a commit no longer lingers: a
// batch that large already shares its commit widely, and when the writer
// is the bottleneck (batches grow with its backlog) the linger would only
// lengthen every cycle.
func lingerBelow(maxBatch int) int { return max(1, maxBatch/4) }

// gather waits up to the store's linger for more writes to join batch, and
// returns as soon as it is full or the store is closing. The writer calls
// it only while writes are arriving concurrently (the last batch carried
// more than one): a lone write is never held back, while under load a
// commit carries the writes of a whole linger period, not only those that
// arrived during the previous fsync. Every commit costs the writer about
// the same CPU whatever it carries (the WAL frames of the hot pages, the
// fsync), so fewer, fuller commits are cheaper per write.
func (s *Store) gather(batch []*op, t *time.Timer) []*op {
	t.Reset(s.linger)
	defer t.Stop()
	for len(batch) < lingerBelow(s.maxBatch) {
		select {
		case o := <-s.queue:
			batch = append(batch, o)
		case <-t.C:
			return s.fill(batch)
		case <-s.quit:
			return batch
		}
	}
	return s.fill(batch) // whatever else is already queued, up to maxBatch
}

// commit runs batch in one transaction, each op inside its own savepoint,
// commits once and hands every caller its own result.
func (s *Store) commit(batch []*op) {
	ctx := context.Background() // the writer's work outlives any caller
	results := make([]error, len(batch))
	if n := int64(len(batch)); n > s.maxSeen.Load() {
		s.maxSeen.Store(n) // only the writer stores, so load-then-store is safe
	}
	tx, err := s.writeDB.BeginTx(ctx, nil)
	if err != nil {
		s.abort(batch, results, nil, fmt.Errorf("begin: %w", err))
		return
	}
	clear(s.batchStmts) // the last transaction's wrappers were closed by its end
	s.batchTx = tx
	defer func() { s.batchTx = nil }()
	w := s.w(tx)
	for i, o := range batch {
		if _, err := w.ExecContext(ctx, qSavepoint); err != nil {
			s.abort(batch, results, tx, fmt.Errorf("savepoint: %w", err))
			return
		}
		results[i] = runOp(o, tx)
		s.writes.Add(1)
		if results[i] != nil {
			s.failed.Add(1)
			if _, err := w.ExecContext(ctx, qRollbackTo); err != nil {
				s.abort(batch, results, tx, fmt.Errorf("rollback to savepoint: %w", err))
				return
			}
		}
		if _, err := w.ExecContext(ctx, qRelease); err != nil {
			s.abort(batch, results, tx, fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	if s.beforeCommit != nil {
		s.beforeCommit()
	}
	if err := tx.Commit(); err != nil {
		s.commitErrors.Add(1)
		_ = tx.Rollback()
		unknown := orderflow.Wrap(orderflow.EInternal, err, "sqlite: commit failed: outcome unknown, the write may or may not be durable")
		for i, o := range batch {
			if results[i] == nil {
				results[i] = unknown
			}
			o.done <- results[i]
		}
		return
	}
	s.commits.Add(1)
	for i, o := range batch {
		o.done <- results[i]
	}
}

// abort rolls back a batch that could not run to its commit. Nothing of it
// was written, so every op fails with a known outcome: its own error if it
// had one, else the batch's.
func (s *Store) abort(batch []*op, results []error, tx *sql.Tx, cause error) {
	s.commitErrors.Add(1)
	if tx != nil {
		_ = tx.Rollback()
	}
	batchErr := orderflow.Wrap(orderflow.EInternal, cause, "sqlite: write transaction aborted, nothing was written")
	for i, o := range batch {
		if results[i] == nil {
			results[i] = batchErr
		}
		o.done <- results[i]
	}
}

// runOp calls o.fn, turning a panic into an error so one bad write cannot
// kill the writer and strand every other caller.
func runOp(o *op, tx *sql.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = orderflow.Wrap(orderflow.EInternal, fmt.Errorf("%v\n%s", r, debug.Stack()), "sqlite: write panicked")
		}
	}()
	return o.fn(o.ctx, tx)
}
