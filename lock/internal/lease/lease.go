// Package lease implements orderflow.Lease once for every backend: the token,
// the Done hint, the renewal the lease owns, and a Release that runs exactly
// once and stops that renewal first.
package lease

import (
	"context"
	"sync"
	"time"
)

// Config describes a freshly acquired lease.
type Config struct {
	Token uint64
	// TTL is the lifetime the backend grants on renewal; renewal runs every
	// TTL/3.
	TTL time.Duration
	// Sent is when the request that acquired (or last extended) the lock was
	// sent. The backend started the TTL no earlier than this, so Sent+TTL is
	// a lower bound on the expiry that needs no clock shared with the server.
	Sent time.Time
	// Valid, if positive and below TTL, is how long after Sent the lock
	// surely lasts when the backend granted less than TTL at first (a lock
	// handed over to a waiter); the first renewal then comes early enough.
	Valid time.Duration
	// Extend renews the lease for TTL. held=false with a nil error means the
	// lock is provably gone; an error means "unknown, try again".
	Extend func(ctx context.Context) (held bool, err error)
	// Release gives the lock up; it is called at most once.
	Release func(ctx context.Context) error
	// OnEnd, if set, runs once when Done closes: after Release, or when the
	// lease is lost.
	OnEnd func()
	// Renewer, if set, schedules the renewal; otherwise the lease arms a
	// timer of its own.
	Renewer *Renewer
}

// Margin is how long before the earliest possible expiry Done closes. It
// absorbs scheduling delay and clock-rate drift between client and server.
func Margin(ttl time.Duration) time.Duration { return ttl / 10 }

// Lease is a held lock. The zero value is not usable; see Start.
//
// Renewal is scheduled by a Renewer shared by the leases of a Locker (see
// there), or else by a timer of the lease's own: no goroutine waits for a
// lease. With a timer, one does both jobs: it fires for the next renewal, or
// at the deadline if that comes first, and Done closes when it fires past
// the deadline.
type Lease struct {
	token   uint64
	done    chan struct{}
	lost    sync.Once
	ttl     time.Duration
	extend  func(ctx context.Context) (bool, error)
	release func(ctx context.Context) error
	onEnd   func()

	renewer *Renewer
	period  time.Duration // the Renewer's tick this lease needs

	mu       sync.Mutex
	timer    *time.Timer   // nil with a Renewer
	next     time.Time     // with a Renewer: when to renew
	deadline time.Time     // past this the lock may have expired on the server
	stopped  bool          // Release began, or the lease was lost
	cancel   func()        // ends the Extend in flight, if any
	running  chan struct{} // closed when the renewal in flight returns

	relOnce sync.Once
	relErr  error
}

// Start returns a lease and, when c.Extend is set, schedules its renewal.
// The lease owns that renewal; Release stops it.
func Start(c Config) *Lease {
	l := &Lease{
		token:   c.Token,
		done:    make(chan struct{}),
		ttl:     c.TTL,
		extend:  c.Extend,
		release: c.Release,
		onEnd:   c.OnEnd,
	}
	if c.Extend == nil {
		return l
	}
	valid := c.TTL
	if c.Valid > 0 && c.Valid < valid {
		valid = c.Valid
	}
	l.deadline = c.Sent.Add(valid - Margin(c.TTL))
	first := min(c.TTL/3, time.Until(l.deadline)/2)
	// Held while renewal is scheduled, so a renewal that comes at once
	// sees it.
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.Renewer != nil {
		l.next = time.Now().Add(first)
		l.period = period(valid)
		if c.Renewer.add(l, l.period) {
			l.renewer = c.Renewer
			return l
		}
	}
	l.timer = time.AfterFunc(first, l.renew)
	return l
}

// tick is the Renewer's visit: close Done within one period of the deadline,
// or start a renewal that is due.
func (l *Lease) tick(now time.Time) {
	l.mu.Lock()
	if l.stopped || l.running != nil {
		l.mu.Unlock()
		return
	}
	if !now.Before(l.deadline.Add(-l.period)) {
		// The next tick may come after the deadline: Done closes now.
		l.stopped = true
		l.mu.Unlock()
		l.Lose()
		return
	}
	if now.Before(l.next) {
		l.mu.Unlock()
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), l.deadline)
	running := make(chan struct{})
	l.cancel, l.running = cancel, running
	l.mu.Unlock()
	go l.extendOnce(ctx, cancel, running)
}

// detach moves a lease from a Renewer that is closing to a timer of its own.
func (l *Lease) detach() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.renewer = nil
	if l.stopped || l.running != nil {
		// A renewal in flight re-arms through extendOnce.
		return
	}
	l.timer = time.AfterFunc(max(time.Until(l.next), 0), l.renew)
}

// Token is the fencing token.
func (l *Lease) Token() uint64 { return l.token }

// Done is closed when the lease may have been lost, or was released.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Lose closes Done. Backends call it when they learn the lock is gone.
func (l *Lease) Lose() {
	l.lost.Do(func() {
		l.mu.Lock()
		r := l.renewer
		l.mu.Unlock()
		if r != nil {
			r.remove(l)
		}
		close(l.done)
		if l.onEnd != nil {
			l.onEnd()
		}
	})
}

// Release stops renewal (waiting for one in flight), then releases the lock
// once. Later calls return the first call's result.
func (l *Lease) Release(ctx context.Context) error {
	l.relOnce.Do(func() {
		l.mu.Lock()
		l.stopped = true
		if l.timer != nil {
			l.timer.Stop()
		}
		if l.cancel != nil {
			l.cancel()
		}
		running := l.running
		l.mu.Unlock()
		if running != nil {
			<-running
		}
		if l.release != nil {
			l.relErr = l.release(ctx)
		}
		l.Lose()
	})
	return l.relErr
}

// renew runs when the lease's own timer fires: it extends the lock, or closes
// Done when the deadline has passed.
func (l *Lease) renew() {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	if !time.Now().Before(l.deadline) {
		l.stopped = true
		l.mu.Unlock()
		l.Lose()
		return
	}
	// An extension that answers after the deadline is worthless: Done
	// must already be closed by then.
	ctx, cancel := context.WithDeadline(context.Background(), l.deadline)
	running := make(chan struct{})
	l.cancel, l.running = cancel, running
	l.mu.Unlock()
	l.extendOnce(ctx, cancel, running)
}

// extendOnce runs one Extend (started by renew or tick) and schedules what
// comes next: the next renewal, a retry, or Done.
func (l *Lease) extendOnce(ctx context.Context, cancel context.CancelFunc, running chan struct{}) {
	sent := time.Now()
	held, err := l.extend(ctx)
	cancel()

	l.mu.Lock()
	defer close(running)
	l.cancel, l.running = nil, nil
	if l.stopped {
		l.mu.Unlock()
		return
	}
	interval := l.ttl / 3
	var after time.Duration
	switch {
	case err == nil && held:
		l.deadline = sent.Add(l.ttl - Margin(l.ttl))
		after = interval
	case err == nil || !time.Now().Before(l.deadline):
		l.stopped = true
	default:
		// Retry soon, but no later than the deadline.
		after = min(max(interval/4, time.Millisecond), time.Until(l.deadline))
	}
	lose := l.stopped
	if !lose {
		if l.renewer != nil {
			l.next = time.Now().Add(after)
		} else if l.timer != nil {
			l.timer.Reset(after)
		} else {
			l.timer = time.AfterFunc(after, l.renew) // detached meanwhile
		}
	}
	l.mu.Unlock()
	if lose {
		l.Lose()
	}
}
