package redislock

import (
	"context"
	"sync"
)

// gates queue a Locker's own callers per key, first come first served, so
// that at most one of them contends for the lock in Redis at a time. Without
// them every release wakes every local waiter and all of them run the acquire
// script, and which one wins is chance: that is what gives polling locks their
// long tails. Waiters in other processes still contend through Redis.
type gates struct {
	mu sync.Mutex
	m  map[string]*gate
}

type gate struct {
	sem  chan struct{} // capacity 1; a Go channel's send queue is FIFO
	refs int
}

// enter blocks until the caller is first in line for key, or ctx ends. The
// returned func leaves the line; it is safe to call more than once.
func (g *gates) enter(ctx context.Context, key string) (leave func(), err error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = make(map[string]*gate)
	}
	e := g.m[key]
	if e == nil {
		e = &gate{sem: make(chan struct{}, 1)}
		g.m[key] = e
	}
	e.refs++
	g.mu.Unlock()
	select {
	case e.sem <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-e.sem; g.unref(key, e) }) }, nil
	case <-ctx.Done():
		g.unref(key, e)
		return nil, ctx.Err()
	}
}

func (g *gates) unref(key string, e *gate) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(g.m, key)
	}
}
