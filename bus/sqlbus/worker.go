package sqlbus

import (
	"container/heap"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/orderflow/orderflow"
)

// consumer is one Consume call: its handler and its workers' stop signal.
type consumer struct {
	g    *group
	h    orderflow.Handler
	ctx  context.Context // handlers' context: cancelled ShutdownGrace after stop
	stop <-chan struct{}
}

// run is one worker: it takes an order from the group's ready queue and
// serves it until the order has nothing left or must wait.
func (c *consumer) run() {
	for {
		select {
		case <-c.stop:
			return
		case q := <-c.g.ready:
			c.serve(q)
		}
	}
}

// serve handles q's events in order until q is empty, waits out a back-off,
// or this consumer stops (then q goes back to the ready queue for the
// group's other consumers, or for nobody if this was the last).
func (c *consumer) serve(q *orderQueue) {
	g, maxDeliveries := c.g, c.g.b.cfg.MaxDeliveries
	for {
		select {
		case <-c.stop:
			g.ready <- q
			return
		default:
		}
		g.mu.Lock()
		e := q.events[0]
		e.attempts++
		attempt := e.attempts
		mustClaim := !e.claimed && e.redriveID == 0 && e.ev.Seq <= g.recoverUpTo
		g.mu.Unlock()
		if mustClaim && attempt <= maxDeliveries {
			if err := g.claim(e, attempt); err != nil {
				g.warn("counting a recovered delivery failed; retrying after a back-off", err)
				g.mu.Lock()
				e.attempts--
				g.mu.Unlock()
				g.park(q, attempt)
				return
			}
		}
		if attempt > maxDeliveries {
			// Out of deliveries without a verdict: the dead-letter write
			// failed last time, or deliveries were cut short by crashes.
			// Dead-letter without delivering again.
			if err := g.deadLetter(e, attempt-1, g.gaveUp(e)); err != nil {
				g.warn("dead-letter write failed; retrying after a back-off", err)
				g.mu.Lock()
				e.attempts--
				g.mu.Unlock()
				g.park(q, attempt)
				return
			}
			if !g.finish(q) {
				return
			}
			continue
		}
		err := c.call(e, attempt)
		if err == nil {
			if !g.finish(q) {
				return
			}
			continue
		}
		if orderflow.IsPermanent(err) || attempt >= maxDeliveries {
			if dlErr := g.deadLetter(e, attempt, err); dlErr == nil {
				if !g.finish(q) {
					return
				}
				continue
			} else {
				g.warn("dead-letter write failed; retrying after a back-off", dlErr)
			}
		}
		g.retry(q, e, attempt, err)
		return
	}
}

// gaveUp is the dead-letter reason of an event out of deliveries without a
// final verdict.
func (g *group) gaveUp(e *entry) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e.lastErr != nil {
		return fmt.Errorf("%w: %w", errGaveUp, e.lastErr)
	}
	return fmt.Errorf("%w: no delivery finished (the process stopped during each: a crash loop?)", errGaveUp)
}

// call runs the handler on e; a panic fails the delivery instead of the
// process.
func (c *consumer) call(e *entry, attempt int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sqlbus: handler panicked: %v", r)
		}
	}()
	c.g.b.stats.deliveries.Add(1)
	return c.h(c.ctx, orderflow.Delivery{Event: e.ev, Group: c.g.name, Attempt: attempt})
}

// finish acknowledges q's head in memory (the flusher writes it) and
// reports whether q has more events for the caller to serve.
func (g *group) finish(q *orderQueue) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := q.events[0]
	q.events[0] = nil
	q.events = q.events[1:]
	e.acked = true
	if e.redriveID > 0 {
		g.redriveAck = append(g.redriveAck, e.redriveID)
	} else {
		g.acks = append(g.acks, e.ev.Seq)
	}
	delete(g.failures, e)
	e.ev = orderflow.Event{Seq: e.ev.Seq} // the window keeps the seq only
	g.inflight--
	g.poke(g.pending)
	if g.starved && g.b.cfg.MaxInFlight-g.inflight >= g.b.cfg.refill() {
		g.starved = false
		g.poke(g.wake)
	}
	if len(q.events) == 0 {
		delete(g.orders, q.key)
		return false
	}
	return true
}

// retry records e's failed delivery (persisted by the flusher) and parks q
// until its back-off has passed.
func (g *group) retry(q *orderQueue, e *entry, attempt int, err error) {
	g.b.stats.failures.Add(1)
	g.mu.Lock()
	g.failures[e] = attempt
	e.lastErr = err
	g.poke(g.pending)
	g.mu.Unlock()
	g.park(q, attempt)
}

// park puts q in the back-off heap for the wait after attempt failures.
func (g *group) park(q *orderQueue, attempt int) {
	d := g.b.cfg.backoff(attempt)
	g.mu.Lock()
	defer g.mu.Unlock()
	q.due = time.Now().Add(d)
	heap.Push(&g.backoff, q)
	g.poke(g.wake) // the poller's timer may be set past the new due time
}

// claim durably counts the delivery about to start of an event that was in
// the outbox when the group started, and so may have been in flight when an
// earlier process died. Without it, an event whose handler crashes the
// process would come back on every restart, forever, with the same Attempt;
// with it the crash loop ends in the dead letters after MaxDeliveries
// restarts. Events committed after the start pay nothing, and each event
// pays once per process (concurrent claims share the store's commits).
func (g *group) claim(e *entry, attempt int) error {
	ctx, cancel := writeCtx()
	defer cancel()
	err := g.b.st.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, qRecordAttempts, g.name, jsonArg([][2]int64{{e.ev.Seq, int64(attempt)}}))
		return err
	})
	if err != nil {
		return err
	}
	g.b.stats.claims.Add(1)
	g.mu.Lock()
	e.claimed = true
	g.mu.Unlock()
	return nil
}

// backoff is the wait after the attempt-th failed delivery: BackoffBase
// doubled per earlier failure, capped at BackoffMax, minus up to half at
// random.
func (c *Config) backoff(attempt int) time.Duration {
	d := c.BackoffMax
	if shift := attempt - 1; shift < 32 && c.BackoffBase<<shift < c.BackoffMax && c.BackoffBase<<shift > 0 {
		d = c.BackoffBase << shift
	}
	return d - rand.N(d/2+1)
}
