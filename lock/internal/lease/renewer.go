package lease

import (
	"sync"
	"time"
)

// Renewer drives the renewal of many leases from one goroutine and one
// ticker, so that starting and ending a lease costs a map insert and delete.
// A timer per lease (or a goroutine per lease) costs more than that on every
// Acquire: adding a timer wakes an idle thread to poll for it, a futex
// wake-up on the acquiring goroutine's path.
//
// The ticker runs every twelfth of the shortest lifetime among the leases
// (TTL, or the first grant when shorter), while there are leases, and stops
// after a few idle ticks. A lease's Done closes at the first tick within
// one period of its deadline: never after the deadline, at most one period
// early. Each renewal runs on a goroutine of its own, so a slow one holds up
// no other lease.
//
// The zero value is ready to use. Its owner (a Locker) calls Close.
type Renewer struct {
	mu     sync.Mutex
	leases map[*Lease]struct{}
	period time.Duration
	ticker *time.Ticker
	stop   chan struct{} // of the running goroutine; nil if none
	idle   int
	closed bool
	wg     sync.WaitGroup
}

// idleTicks is how many ticks without a lease the goroutine waits before it
// stops: a Locker taking short locks one after another keeps it running.
const idleTicks = 4

// period is the tick period a lease needs.
func period(life time.Duration) time.Duration { return max(life/12, time.Millisecond) }

// add starts renewing l; it reports false if the Renewer is closed.
func (r *Renewer) add(l *Lease, p time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	if r.leases == nil {
		r.leases = make(map[*Lease]struct{})
	}
	r.leases[l] = struct{}{}
	r.idle = 0
	switch {
	case r.stop == nil:
		r.period = p
		r.ticker = time.NewTicker(p)
		r.stop = make(chan struct{})
		r.wg.Add(1)
		go r.run(r.ticker, r.stop)
	case p < r.period:
		r.period = p
		r.ticker.Reset(p)
	}
	return true
}

func (r *Renewer) remove(l *Lease) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.leases, l)
}

func (r *Renewer) run(t *time.Ticker, stop chan struct{}) {
	defer r.wg.Done()
	defer t.Stop()
	var due []*Lease
	for {
		var now time.Time
		select {
		case <-stop:
			return
		case now = <-t.C:
		}
		r.mu.Lock()
		due = due[:0]
		shortest := time.Duration(0)
		for l := range r.leases {
			due = append(due, l)
			if shortest == 0 || l.period < shortest {
				shortest = l.period
			}
		}
		if len(due) == 0 {
			r.idle++
			if r.idle >= idleTicks {
				r.stop, r.ticker = nil, nil
				r.mu.Unlock()
				return
			}
		} else if shortest > r.period {
			// The lease that needed short ticks is gone.
			r.period = shortest
			t.Reset(shortest)
		}
		r.mu.Unlock()
		for _, l := range due {
			l.tick(now)
		}
	}
}

// Close stops the goroutine and waits for it. Leases still held go on with
// a timer each.
func (r *Renewer) Close() {
	r.mu.Lock()
	r.closed = true
	if r.stop != nil {
		close(r.stop)
		r.stop, r.ticker = nil, nil
	}
	left := make([]*Lease, 0, len(r.leases))
	for l := range r.leases {
		left = append(left, l)
	}
	r.leases = nil
	r.mu.Unlock()
	r.wg.Wait()
	for _, l := range left {
		l.detach()
	}
}
