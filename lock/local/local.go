// Package local is the in-process orderflow.Locker that `orderflow serve` uses:
// one process, so a sync primitive plus a fencing token is all a lock needs.
//
// Waiters queue in FIFO order (a Go channel's send queue), so a lock that is
// handed over constantly still serves every waiter in turn. A lease never
// expires on its own: the holder and the lock table live and die together, so
// there is nothing for a TTL to protect against. The TTL is still validated,
// so code written against this Locker behaves the same on the distributed ones.
package local

import (
	"context"
	"sync"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/lock"
	"github.com/orderflow/orderflow/lock/internal/lease"
)

var _ orderflow.Locker = (*Locker)(nil)

// Locker is an in-process lock table. The zero value is ready to use; a
// Locker must not be copied after first use.
type Locker struct {
	mu   sync.Mutex
	keys map[string]*entry
	last uint64 // the last token handed out, for any key

	// now is the clock the tokens are built from; nil means time.Now.
	now func() time.Time
}

type entry struct {
	sem    chan struct{} // capacity 1: a full channel means held
	refs   int           // holders and waiters; the entry goes away at 0
	holder *lease.Lease
	token  uint64
}

// New returns an empty Locker.
func New() *Locker { return &Locker{} }

// Acquire blocks until key is free or ctx ends. Waiters are served first come,
// first served.
func (l *Locker) Acquire(ctx context.Context, key string, ttl time.Duration) (orderflow.Lease, error) {
	if err := lock.Check(key, ttl, time.Millisecond); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, lock.CtxErr(ctx, key)
	}
	e := l.ref(key)
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		l.unref(key, e)
		return nil, lock.CtxErr(ctx, key)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	tok := l.nextToken()
	le := lease.Start(lease.Config{
		Token:   tok,
		TTL:     ttl,
		Release: func(context.Context) error { return l.release(key, e, tok) },
	})
	e.holder, e.token = le, tok
	return le, nil
}

// nextToken returns max(last+1, now in ns). The clock part keeps tokens
// increasing across restarts of the process, as long as the wall clock does
// not step back by more than the restart takes; the counter part keeps them
// strictly increasing within one. Nanoseconds, because a local lock can be
// taken millions of times a second and the counter must not run ahead of the
// clock. l.mu must be held.
func (l *Locker) nextToken() uint64 {
	now := time.Now
	if l.now != nil {
		now = l.now
	}
	tok := uint64(now().UnixNano())
	if tok <= l.last {
		tok = l.last + 1
	}
	l.last = tok
	return tok
}

func (l *Locker) ref(key string) *entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys == nil {
		l.keys = make(map[string]*entry)
	}
	e := l.keys[key]
	if e == nil {
		e = &entry{sem: make(chan struct{}, 1)}
		l.keys[key] = e
	}
	e.refs++
	return e
}

// unref drops one reference; l.mu must not be held.
func (l *Locker) unref(key string, e *entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unrefLocked(key, e)
}

func (l *Locker) unrefLocked(key string, e *entry) {
	e.refs--
	if e.refs == 0 {
		delete(l.keys, key)
	}
}

func (l *Locker) release(key string, e *entry, tok uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.holder == nil || e.token != tok {
		return lock.NotHeld(key)
	}
	l.free(key, e)
	return nil
}

// free hands the lock to the next waiter; l.mu must be held.
func (l *Locker) free(key string, e *entry) {
	e.holder, e.token = nil, 0
	<-e.sem
	l.unrefLocked(key, e)
}

// breakLock ends the current lease on key as if it had expired: its Done
// closes and the next waiter gets the lock. It reports whether key was held.
func (l *Locker) breakLock(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[key]
	if e == nil || e.holder == nil {
		return false
	}
	e.holder.Lose()
	l.free(key, e)
	return true
}
