// Package lease implements orderflow.Lease once for every backend: the token,
// the Done hint, the renewal goroutine the lease owns, and a Release that runs
// exactly once and stops that goroutine first.
package lease

import (
	"context"
	"sync"
	"time"
)

// Config describes a freshly acquired lease.
type Config struct {
	Token uint64
	// TTL is the lifetime the backend granted; renewal runs every TTL/3.
	TTL time.Duration
	// Sent is when the request that acquired (or last extended) the lock was
	// sent. The backend started the TTL no earlier than this, so Sent+TTL is
	// a lower bound on the expiry that needs no clock shared with the server.
	Sent time.Time
	// Extend renews the lease. held=false with a nil error means the lock is
	// provably gone; an error means "unknown, try again".
	Extend func(ctx context.Context) (held bool, err error)
	// Release gives the lock up; it is called at most once.
	Release func(ctx context.Context) error
	// OnEnd, if set, runs once when Done closes: after Release, or when the
	// lease is lost.
	OnEnd func()
}

// Margin is how long before the earliest possible expiry Done closes. It
// absorbs scheduling delay and clock-rate drift between client and server.
func Margin(ttl time.Duration) time.Duration { return ttl / 10 }

// Lease is a held lock. The zero value is not usable; see Start.
type Lease struct {
	token   uint64
	done    chan struct{}
	lostMu  sync.Once
	stop    context.CancelFunc // ends renewal, including an Extend in flight
	exited  chan struct{}      // closed when the renewal goroutine returned
	release func(ctx context.Context) error
	onEnd   func()
	relOnce sync.Once
	relErr  error
}

// Start returns a lease and, when c.Extend is set, starts the goroutine that
// renews it. The lease owns that goroutine; Release stops it.
func Start(c Config) *Lease {
	ctx, stop := context.WithCancel(context.Background())
	l := &Lease{
		token:   c.Token,
		done:    make(chan struct{}),
		stop:    stop,
		exited:  make(chan struct{}),
		release: c.Release,
		onEnd:   c.OnEnd,
	}
	if c.Extend == nil {
		close(l.exited)
		return l
	}
	go l.renew(ctx, c)
	return l
}

// Token is the fencing token.
func (l *Lease) Token() uint64 { return l.token }

// Done is closed when the lease may have been lost, or was released.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Lose closes Done. Backends call it when they learn the lock is gone.
func (l *Lease) Lose() {
	l.lostMu.Do(func() {
		close(l.done)
		if l.onEnd != nil {
			l.onEnd()
		}
	})
}

// Release stops renewal, then releases the lock once. Later calls return the
// first call's result.
func (l *Lease) Release(ctx context.Context) error {
	l.relOnce.Do(func() {
		l.stop()
		<-l.exited
		if l.release != nil {
			l.relErr = l.release(ctx)
		}
		l.Lose()
	})
	return l.relErr
}

func (l *Lease) renew(ctx context.Context, c Config) {
	defer close(l.exited)
	interval := c.TTL / 3
	retry := max(interval/4, time.Millisecond)
	// Past this instant the lock may have expired on the server.
	deadline := c.Sent.Add(c.TTL - Margin(c.TTL))
	expire := time.NewTimer(time.Until(deadline))
	defer expire.Stop()
	tick := time.NewTimer(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-expire.C:
			l.Lose()
			return
		case <-tick.C:
		}
		sent := time.Now()
		// An extension that answers after the deadline is worthless: Done
		// must already be closed by then.
		ectx, cancel := context.WithDeadline(ctx, deadline)
		held, err := c.Extend(ectx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && held:
			deadline = sent.Add(c.TTL - Margin(c.TTL))
			expire.Reset(time.Until(deadline))
			tick.Reset(interval)
		case err == nil:
			l.Lose()
			return
		case !time.Now().Before(deadline):
			l.Lose()
			return
		default:
			tick.Reset(retry)
		}
	}
}
