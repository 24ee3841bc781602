// Package redislock is an orderflow.Locker on Redis: one Lua script takes the
// lock (SET NX PX) and mints its fencing token from the server's clock and a
// stored counter, so tokens keep increasing even after Redis restarts empty.
//
// Waiters take turns. A caller that cannot take the lock joins the lock's
// queue in Redis; when the lock is free only the head of the queue may take
// it, so a releaser coming straight back queues behind those already waiting
// instead of winning every race by one round trip. A waiter does not poll: it
// subscribes to the lock's channel, on which Release names the waiter whose
// turn it is, and otherwise comes back when the holder's TTL runs out (a
// holder that died never publishes) and every second to keep its place. A
// waiter that died unannounced loses its place after 3 s. Within one Locker,
// callers also queue in process, so only one of them is in Redis's queue at a
// time. Extending and releasing compare the lock's value with the holder's
// token inside a script, so a holder that lost the lock can neither extend nor
// release the next holder's.
//
// Keys, for a lock named K under prefix P: P{K} holds the token of the current
// holder; P{K}:token the last token minted (no expiry: one small key per lock
// name, kept so tokens survive the lock's expiry); P{K}:released is the
// channel; P{K}:queue and P{K}:due the waiters and when each must be back
// (both expire when nobody waits). The braces keep all of them in one Redis
// Cluster slot.
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
	gates  gates
	n      notifier
}

// New returns a Locker on rdb. An empty prefix means DefaultPrefix. The caller
// keeps ownership of rdb.
func New(rdb redis.UniversalClient, prefix string) *Locker {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Locker{rdb: rdb, prefix: prefix, id: rand.Text()[:16] + ":", n: notifier{rdb: rdb}}
}

// Close ends the Locker's pub/sub connection and the goroutine reading it.
// Call it after every Acquire returned; leases already held keep working.
func (l *Locker) Close() error { return l.n.close() }

// LockKey is the Redis key that holds the current holder's token for key.
func (l *Locker) LockKey(key string) string { return l.prefix + "{" + key + "}" }

func (l *Locker) keys(key string) []string {
	k := l.LockKey(key)
	return []string{k, k + ":token", k + ":queue", k + ":due"}
}
func (l *Locker) channel(key string) string { return l.LockKey(key) + ":released" }

// Acquire blocks until the lock is held or ctx ends. ttl is rounded down to
// whole milliseconds, the resolution of Redis expiry.
func (l *Locker) Acquire(ctx context.Context, key string, ttl time.Duration) (orderflow.Lease, error) {
	if err := lock.Check(key, ttl, time.Millisecond); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, lock.CtxErr(ctx, key)
	}
	leave, err := l.gates.enter(ctx, key)
	if err != nil {
		return nil, lock.CtxErr(ctx, key)
	}
	le, err := l.acquire(ctx, key, ttl, leave)
	if err != nil {
		leave()
		return nil, err
	}
	return le, nil
}

// acquire contends in Redis. The first try needs no subscription; after
// that, a waiter tries again at every release message and, since a holder
// that died never publishes, when the holder's TTL runs out.
func (l *Locker) acquire(ctx context.Context, key string, ttl time.Duration, leave func()) (orderflow.Lease, error) {
	var (
		sub    *subscription
		ch     = l.channel(key)
		id     = l.id + strconv.FormatUint(l.seq.Add(1), 36)
		queued bool // the last try may have put us in the queue
		won    bool
	)
	defer func() {
		if sub != nil {
			l.n.leave(ch, sub)
		}
		if queued && !won {
			// Give our place up now rather than when it lapses, under
			// a context of its own: ctx may be what ended the wait.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			_ = leaveScript.Run(cctx, l.rdb, l.keys(key), id, ch).Err()
		}
	}()
	for {
		// Taken before the try, so a release between the try and the
		// wait still wakes us.
		var (
			ready <-chan struct{}
			sig   *signal
		)
		if sub != nil {
			ready, sig = l.n.waitFor(sub)
		}
		sent := time.Now()
		tok, pttl, err := l.try(ctx, key, ttl, id)
		if err != nil {
			return nil, l.fail(ctx, err, key)
		}
		queued = true
		if tok != 0 {
			won = true
			return l.newLease(key, tok, ttl, sent, leave), nil
		}
		if sub == nil {
			if sub, err = l.n.join(ctx, ch); err != nil {
				return nil, l.fail(ctx, err, key)
			}
			// A release before Redis confirms the subscription is not
			// heard: wait for the confirmation, then try again.
			ready, sig = l.n.waitFor(sub)
		}
		// Come back when the holder's TTL or the waiter ahead's place
		// runs out, and often enough to keep our own place.
		wait := min(time.Duration(pttl)*time.Millisecond+time.Millisecond, queueKeep/3)
		if pttl < 0 {
			wait = queueKeep / 3
		}
		if err := l.wait(ctx, ready, sig, wait, id); err != nil {
			return nil, lock.CtxErr(ctx, key)
		}
	}
}

// wait returns when it is worth trying again: the subscription got
// confirmed (ready), a release named this waiter or nobody in particular
// (sig), or the timeout passed. It returns an error only when ctx ended.
func (l *Locker) wait(ctx context.Context, ready <-chan struct{}, sig *signal, timeout time.Duration, id string) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		fired := ready
		if sig != nil {
			fired = sig.fired
		}
		select {
		case <-fired:
			if sig != nil && sig.payload != "" && sig.payload != id {
				// Another waiter's turn; ours comes with a later
				// message.
				sig = sig.next
				continue
			}
			return nil
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// try runs the acquire script once: a non-zero token means held, otherwise
// pttl is how long the current holder has left.
func (l *Locker) try(ctx context.Context, key string, ttl time.Duration, id string) (tok uint64, pttl int64, err error) {
	res, err := acquireScript.Run(ctx, l.rdb, l.keys(key),
		ttl.Milliseconds(), id, queueKeep.Milliseconds()).Slice()
	if err != nil {
		return 0, 0, err
	}
	return parseAcquire(res)
}

// parseAcquire decodes the acquire script's reply: {1, "token"} or {0, pttl}.
func parseAcquire(res []any) (tok uint64, pttl int64, err error) {
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("acquire script returned %d values", len(res))
	}
	ok, isInt := res[0].(int64)
	switch {
	case !isInt:
		return 0, 0, fmt.Errorf("acquire script returned flag %T", res[0])
	case ok == 0:
		pttl, isInt = res[1].(int64)
		if !isInt {
			return 0, 0, fmt.Errorf("acquire script returned pttl %T", res[1])
		}
		return 0, pttl, nil
	}
	s, _ := res[1].(string)
	tok, err = strconv.ParseUint(s, 10, 64)
	if err != nil || tok == 0 {
		return 0, 0, fmt.Errorf("acquire script returned token %q: %v", s, err)
	}
	return tok, 0, nil
}

func (l *Locker) fail(ctx context.Context, err error, key string) error {
	if ctx.Err() != nil {
		return lock.CtxErr(ctx, key)
	}
	return lock.Unavailable(err, "acquiring", key)
}

func (l *Locker) newLease(key string, tok uint64, ttl time.Duration, sent time.Time, leave func()) *lease.Lease {
	val := strconv.FormatUint(tok, 10)
	lockKey := []string{l.LockKey(key)}
	keys := l.keys(key)
	ms := ttl.Milliseconds()
	return lease.Start(lease.Config{
		Token: tok,
		TTL:   ttl,
		Sent:  sent,
		Extend: func(ctx context.Context) (bool, error) {
			n, err := extendScript.Run(ctx, l.rdb, lockKey, val, ms).Int64()
			return n == 1, err
		},
		Release: func(ctx context.Context) error {
			n, err := releaseScript.Run(ctx, l.rdb, keys, val, l.channel(key)).Int64()
			switch {
			case err != nil:
				return lock.Unavailable(err, "releasing", key)
			case n == 0:
				return lock.NotHeld(key)
			}
			return nil
		},
		// The next caller of this Locker may contend once this lease
		// is released or lost.
		OnEnd: leave,
	})
}
