// Package redislock is an orderflow.Locker on Redis: one Lua script takes the
// lock (SET NX PX) and mints its fencing token from a stored counter that
// starts from the server's clock, so tokens keep increasing even after Redis
// restarts empty (scripts.go says under which assumption). Uncontended, a
// cycle is two small scripts, SET NX PX plus INCRBY and GET plus DEL; marks
// on the counter and on the lock's value send everything else to the full
// scripts, which see the queue.
//
// Waiters take turns, and the lock is handed over, not raced for. A caller
// that cannot take the lock joins the lock's queue in Redis; when the lock is
// free only the head of the queue may take it, so a releaser coming straight
// back queues behind those already waiting instead of winning every race by
// one round trip. Release (a script) gives the lock directly to the head of
// the queue, minting its token, and publishes the grant on that waiter's
// Locker's channel: the waiter holds the lock when the message arrives, with
// no round trip of its own, and no other waiter wakes. A waiter also comes
// back when the holder's TTL runs out (a holder that died never releases) and
// every second to keep its place; a waiter that died unannounced loses its
// place after 3 s, and a lock handed to it lapses by then too. Within one
// Locker, callers also queue in process, so only one of them is in Redis's
// queue at a time. Extending and releasing compare the lock's value with the
// holder's inside a script, so a holder that lost the lock can neither extend
// nor release the next holder's.
//
// Keys, for a lock named K under prefix P: P{K} holds the current holder's
// waiter id (unique per Acquire), with "+" after it while anybody is queued;
// P{K}:token the token counter, whose lowest bit is set while anybody is
// queued (no expiry: one small key per lock name, kept so tokens survive the
// lock's expiry);
// P{K}:queue and P{K}:due the waiters and when each must be back (both expire
// when nobody waits). The braces keep all of them in one Redis Cluster slot.
// Each Locker listens on its own channel, Pgranted:<Locker id>, from its
// first wait until Close.
package redislock

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/lock"
	"github.com/orderflow/orderflow/lock/internal/lease"
)

var _ orderflow.Locker = (*Locker)(nil)

// DefaultPrefix is put before every lock name when New is given none.
const DefaultPrefix = "orderflow:lock:"

// queueKeep is how long a waiter keeps its place in a lock's queue without
// coming back (it comes back every queueKeep/3 while it waits). A waiter that
// died unannounced delays the others by at most this much.
const queueKeep = 3 * time.Second

// Locker takes locks in one Redis (or one Redis Cluster slot per lock). It
// is safe for concurrent use; the callers of one Locker wait for a key in
// FIFO order among themselves. Close it when done: it owns a pub/sub
// connection once anyone had to wait.
type Locker struct {
	rdb    redis.UniversalClient
	prefix string
	id     string        // prefix of this Locker's waiter ids
	seq    atomic.Uint64 // makes waiter ids unique
	s      scripts
	last   atomic.Pointer[keySet] // see keySet
	gates  gates
	n      notifier
	renew  lease.Renewer
}

// New returns a Locker on rdb. An empty prefix means DefaultPrefix. The caller
// keeps ownership of rdb.
func New(rdb redis.UniversalClient, prefix string) *Locker {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	id := rand.Text()[:16]
	wake := prefix + "granted:"
	return &Locker{rdb: rdb, prefix: prefix, id: id + ":", s: newScripts(wake), n: notifier{rdb: rdb, channel: wake + id}}
}

// Close ends the Locker's pub/sub connection and the goroutines reading it
// and renewing leases. Call it after every Acquire returned; leases already
// held keep working (each renewed by a timer of its own).
func (l *Locker) Close() error {
	l.renew.Close()
	return l.n.close()
}

// LockKey is the Redis key that holds the current holder's waiter id for key.
func (l *Locker) LockKey(key string) string { return l.prefix + "{" + key + "}" }

func (l *Locker) keys(key string) []string {
	k := l.LockKey(key)
	return []string{k, k + ":token", k + ":queue", k + ":due"}
}

// keySet is the keys of one lock name, and what the fast scripts pass with
// them boxed, for one TTL. It is not changed once made.
type keySet struct {
	key  string
	ttl  time.Duration
	keys []string
	// keys[0], keys[1] and ttl in ms, boxed for hotScript.run
	lock, counter, ms any
}

// keySet returns the keys of key for ttl. The last one made is kept: a
// Locker that takes the same lock over and over builds and boxes them once.
func (l *Locker) keySet(key string, ttl time.Duration) *keySet {
	if ks := l.last.Load(); ks != nil && ks.key == key && ks.ttl == ttl {
		return ks
	}
	keys := l.keys(key)
	ks := &keySet{key: key, ttl: ttl, keys: keys, lock: keys[0], counter: keys[1], ms: ttl.Milliseconds()}
	l.last.Store(ks)
	return ks
}

// Acquire blocks until the lock is held or ctx ends. ttl is rounded down to
// whole milliseconds, the resolution of Redis expiry.
func (l *Locker) Acquire(ctx context.Context, key string, ttl time.Duration) (orderflow.Lease, error) {
	if err := lock.Check(key, ttl, time.Millisecond); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, lock.CtxErr(ctx, key)
	}
	id := l.waiterID(ttl)
	ks := l.keySet(key, ttl)
	s, t, err := l.gates.enter(ctx, key, id, ttl, func(s *slot, t turn) {
		// Handed the lock as we gave up: pass it on.
		if t.tok == 0 {
			s.leave()
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = l.newLease(key, ks, id, nil, t.tok, ttl, t.sent, ttl, s).Release(cctx)
	})
	if err != nil {
		return nil, lock.CtxErr(ctx, key)
	}
	if t.tok != 0 {
		// The previous holder, a caller of this Locker, gave us the lock
		// in the script that released it.
		return l.newLease(key, ks, id, nil, t.tok, ttl, t.sent, ttl, s), nil
	}
	le, err := l.acquire(ctx, key, ks, id, ttl, s)
	if err != nil {
		s.leave()
		return nil, err
	}
	return le, nil
}

// waiterID returns a new waiter id, "<Locker id>:<seq>:<ttl ms>".
func (l *Locker) waiterID(ttl time.Duration) string {
	var buf [64]byte
	b := append(buf[:0], l.id...)
	b = strconv.AppendUint(b, l.seq.Add(1), 36)
	b = append(b, ':')
	b = strconv.AppendInt(b, ttl.Milliseconds(), 10)
	return string(b)
}

// acquire contends in Redis. The fast script takes a free lock nobody
// queues for. Otherwise a waiter tries the full script once, then waits for
// the lock to be handed to it (a message on its Locker's channel), and tries
// again only when the holder's TTL runs out (a holder that died never hands
// over) and every queueKeep/3 to keep its place.
func (l *Locker) acquire(ctx context.Context, key string, ks *keySet, id string, ttl time.Duration, s *slot) (orderflow.Lease, error) {
	sent := time.Now()
	idArg := any(id) // boxed once for both fast scripts
	tok, err := l.tryFast(ctx, ks, idArg)
	if err != nil {
		return nil, l.fail(ctx, err, key)
	}
	if tok != 0 {
		return l.newLease(key, ks, id, idArg, tok, ttl, sent, ttl, s), nil
	}
	var (
		grants <-chan string
		ready  <-chan struct{} // non-nil until a try after it closed
		queued bool            // the last try may have put us in the queue
		won    bool
	)
	if l.n.listening() {
		// Registered before the first full try, the first that may
		// queue us: no grant can be missed.
		grants, _, _ = l.n.register(ctx, id)
	}
	defer func() {
		if grants != nil {
			l.n.unregister(id)
		}
		if queued && !won {
			// Give our place up now rather than when it lapses (and
			// pass on a lock handed to us meanwhile), under a context
			// of its own: ctx may be what ended the wait.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			_ = l.s.leave.Run(cctx, l.rdb, ks.keys, id).Err()
		}
	}()
	for {
		sent := time.Now()
		tok, pttl, err := l.try(ctx, ks.keys, ttl, id)
		if err != nil {
			return nil, l.fail(ctx, err, key)
		}
		if tok != 0 {
			won = true
			return l.newLease(key, ks, id, nil, tok, ttl, sent, time.Duration(pttl)*time.Millisecond, s), nil
		}
		queued = true
		if grants == nil {
			// A grant published before the subscription is confirmed
			// is not heard: once it is, try again.
			if grants, ready, err = l.n.register(ctx, id); err != nil {
				return nil, l.fail(ctx, err, key)
			}
		}
		wait := min(time.Duration(pttl)*time.Millisecond+time.Millisecond, queueKeep/3)
		if pttl < 0 {
			wait = queueKeep / 3
		}
		tok, err = l.wait(ctx, grants, &ready, wait)
		if err != nil {
			return nil, lock.CtxErr(ctx, key)
		}
		if tok == 0 {
			continue
		}
		// Handed over: the grant started after our last try was sent and
		// lasts min(ttl, queueKeep) from then at least (see grant in
		// scripts.go).
		valid := min(ttl, queueKeep)
		if time.Until(sent.Add(valid-lease.Margin(ttl))) < valid/4 {
			// Too little of the grant is left to count on: make it a
			// full TTL first.
			sent = time.Now()
			held, err := extendScript.Run(ctx, l.rdb, ks.keys[:1], id, ttl.Milliseconds()).Int64()
			if err != nil {
				return nil, l.fail(ctx, err, key)
			}
			if held != 1 {
				continue // the grant ran out; we queue again
			}
			valid = ttl
		}
		won = true
		return l.newLease(key, ks, id, nil, tok, ttl, sent, valid, s), nil
	}
}

// wait returns a token handed to this waiter, or 0 when it is worth trying
// again: the subscription got confirmed (*ready closes; it is then set to
// nil), or the timeout passed. It returns an error only when ctx ended.
func (l *Locker) wait(ctx context.Context, grants <-chan string, ready *<-chan struct{}, timeout time.Duration) (uint64, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case s := <-grants:
			tok, err := strconv.ParseUint(s, 10, 64)
			if err != nil || tok == 0 {
				continue // not from our script; the timed try finds a real grant
			}
			return tok, nil
		case <-*ready:
			*ready = nil
			return 0, nil
		case <-timer.C:
			return 0, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// tryFast runs the fast acquire script: a non-zero token means held, for
// the whole ttl.
func (l *Locker) tryFast(ctx context.Context, ks *keySet, id any) (uint64, error) {
	n, err := fastAcquireScript.run(ctx, l.rdb, 2, ks.lock, ks.counter, ks.ms, id).Int64()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("acquire script returned token %d", n)
	}
	return uint64(n), nil
}

// try runs the full acquire script once: a non-zero token means held, and
// pttl is then how long the lock surely lasts; otherwise pttl is how long
// the current holder has left.
func (l *Locker) try(ctx context.Context, keys []string, ttl time.Duration, id string) (tok uint64, pttl int64, err error) {
	res, err := l.s.acquire.Run(ctx, l.rdb, keys, ttl.Milliseconds(), id).Slice()
	if err != nil {
		return 0, 0, err
	}
	return parseAcquire(res)
}

// parseAcquire decodes the full acquire script's reply: {1, "token", pttl}
// or {0, pttl}.
func parseAcquire(res []any) (tok uint64, pttl int64, err error) {
	if len(res) < 2 {
		return 0, 0, fmt.Errorf("acquire script returned %d values", len(res))
	}
	ok, isInt := res[0].(int64)
	if !isInt {
		return 0, 0, fmt.Errorf("acquire script returned flag %T", res[0])
	}
	if ok == 0 {
		if len(res) != 2 {
			return 0, 0, fmt.Errorf("acquire script returned %d values without a token", len(res))
		}
		pttl, isInt = res[1].(int64)
		if !isInt {
			return 0, 0, fmt.Errorf("acquire script returned pttl %T", res[1])
		}
		return 0, pttl, nil
	}
	if len(res) != 3 {
		return 0, 0, fmt.Errorf("acquire script returned %d values with a token", len(res))
	}
	s, _ := res[1].(string)
	tok, err = strconv.ParseUint(s, 10, 64)
	if err != nil || tok == 0 {
		return 0, 0, fmt.Errorf("acquire script returned token %q: %v", s, err)
	}
	pttl, isInt = res[2].(int64)
	if !isInt || pttl <= 0 {
		return 0, 0, fmt.Errorf("acquire script returned token pttl %v", res[2])
	}
	return tok, pttl, nil
}

func (l *Locker) fail(ctx context.Context, err error, key string) error {
	if ctx.Err() != nil {
		return lock.CtxErr(ctx, key)
	}
	return lock.Unavailable(err, "acquiring", key)
}

// newLease starts the lease of waiter id on key. The lease holds s, the
// Locker's slot for key: releasing it may hand the lock to the next caller in
// line directly, and otherwise lets that caller go to Redis. fastID, the id
// boxed, is set when the lock was taken by the fast script: nobody was queued
// then, so the release tries the fast script first too.
func (l *Locker) newLease(key string, ks *keySet, id string, fastID any, tok uint64, ttl time.Duration, sent time.Time, valid time.Duration, s *slot) *lease.Lease {
	ms := ttl.Milliseconds()
	keys := ks.keys
	return lease.Start(lease.Config{
		Token: tok,
		TTL:   ttl,
		Sent:  sent,
		Valid: valid,
		Extend: func(ctx context.Context) (bool, error) {
			n, err := extendScript.Run(ctx, l.rdb, keys[:1], id, ms).Int64()
			return n == 1, err
		},
		Release: func(ctx context.Context) error {
			next := s.next()
			sent := time.Now()
			var (
				res any
				err error
			)
			if next == nil && fastID != nil {
				// 0: not ours, or somebody queued meanwhile; the
				// full script tells which.
				res, err = fastReleaseScript.run(ctx, l.rdb, 1, ks.lock, fastID).Result()
			}
			switch {
			case err != nil || res == int64(1):
			case next == nil:
				res, err = l.s.release.Run(ctx, l.rdb, keys, id).Result()
			default:
				res, err = l.s.release.Run(ctx, l.rdb, keys, id, next.id, next.ttl.Milliseconds()).Result()
			}
			var given uint64
			if str, ok := res.(string); ok && err == nil {
				given, _ = strconv.ParseUint(str, 10, 64)
			}
			if next != nil {
				// Given: the slot goes with it. Otherwise the lease's
				// end lets next go to Redis, where it finds a lock
				// given to it in a release whose reply was lost.
				s.pass(next, turn{tok: given, sent: sent})
			}
			switch {
			case err != nil:
				return lock.Unavailable(err, "releasing", key)
			case res == int64(0):
				return lock.NotHeld(key)
			}
			return nil
		},
		// The next caller of this Locker may contend once this lease
		// is released or lost.
		OnEnd:   s.leave,
		Renewer: &l.renew,
	})
}
