package redislock

import (
	"context"
	"sync"
	"time"
)

// gates queue a Locker's own callers per key, first come first served, so
// that at most one of them contends for the lock in Redis at a time. Without
// them every release wakes every local waiter and all of them run the acquire
// script, and which one wins is chance: that is what gives polling locks their
// long tails. Waiters in other processes still contend through Redis.
//
// When the holder releases and the next in line is a caller of the same
// Locker, the release script gives it the lock directly (if nobody waits in
// Redis), and the token is handed to it here: one round trip per hand-over
// instead of a release and an acquire.
type gates struct {
	mu sync.Mutex
	m  map[string]*gate // a key is present while its slot is taken; nil until somebody waits
}

type gate struct {
	queue []*gateWaiter // FIFO; the caller in front of them holds the slot
}

// gateWaiter is a caller waiting for the slot.
type gateWaiter struct {
	id  string
	ttl time.Duration
	// ch receives exactly one turn: the slot (tok 0: go to Redis) or the
	// slot with the lock already given to this waiter.
	ch      chan turn
	handing bool // a release script may be giving it the lock right now
}

type turn struct {
	tok  uint64
	sent time.Time // when the script that gave the lock was sent
}

// slot is a caller's place in front of its gate: it holds it from enter
// until leave or pass, exactly once.
type slot struct {
	g    *gates
	key  string
	used bool // guarded by g.mu
}

// enter blocks until the caller holds the slot for key, or ctx ends. The
// turn's token is non-zero when the lock was handed over with the slot. If
// ctx ends while a turn is on its way, abandon gets it (and must give up
// what it carries).
func (g *gates) enter(ctx context.Context, key, id string, ttl time.Duration, abandon func(*slot, turn)) (*slot, turn, error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = make(map[string]*gate)
	}
	s := &slot{g: g, key: key}
	e, taken := g.m[key]
	if !taken {
		// nil: taken, nobody waits (the uncontended case allocates
		// no gate).
		g.m[key] = nil
		g.mu.Unlock()
		return s, turn{}, nil
	}
	if e == nil {
		e = &gate{}
		g.m[key] = e
	}
	w := &gateWaiter{id: id, ttl: ttl, ch: make(chan turn, 1)}
	e.queue = append(e.queue, w)
	g.mu.Unlock()
	select {
	case t := <-w.ch:
		return s, t, nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	for i, q := range e.queue {
		if q == w && !w.handing {
			e.queue = append(e.queue[:i], e.queue[i+1:]...)
			g.mu.Unlock()
			return nil, turn{}, ctx.Err()
		}
	}
	g.mu.Unlock()
	// Our turn is being given or was given: take it, and give it up.
	abandon(s, <-w.ch)
	return nil, turn{}, ctx.Err()
}

// next marks the first waiter for s's key as being handed the lock and
// returns it, or nil if none waits or s was already left.
func (s *slot) next() *gateWaiter {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	e := s.g.m[s.key]
	if s.used || e == nil || len(e.queue) == 0 {
		return nil
	}
	w := e.queue[0]
	w.handing = true
	return w
}

// pass gives the slot and the lock to w (which next returned); tok 0 means
// the lock did not go to w after all, and the slot stays.
func (s *slot) pass(w *gateWaiter, t turn) {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	w.handing = false
	if t.tok == 0 || s.used {
		return
	}
	s.used = true
	e := s.g.m[s.key]
	e.queue = e.queue[1:] // w is still first: nobody else pops while it is handing
	w.ch <- t
}

// leave gives the slot to the next waiter, who goes to Redis, or frees it.
// It is safe to call more than once, and after pass.
func (s *slot) leave() {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	if s.used {
		return
	}
	s.used = true
	e := s.g.m[s.key]
	if e == nil || len(e.queue) == 0 {
		delete(s.g.m, s.key)
		return
	}
	w := e.queue[0]
	e.queue = e.queue[1:]
	w.ch <- turn{}
}
