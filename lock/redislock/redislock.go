// Package redislock is an orderflow.Locker on Redis: one Lua script takes the
// lock (SET NX PX) and mints its fencing token from the server's clock and a
// stored counter, so tokens keep increasing even after Redis restarts empty.
//
// A waiter does not poll. It subscribes to the lock's channel, which Release
// publishes on, and otherwise wakes when the holder's TTL runs out (a holder
// that died never publishes). Extending and releasing compare the lock's value
// with the holder's token inside a script, so a holder that lost the lock can
// neither extend nor release the next holder's.
//
// Keys, for a lock named K under prefix P: P{K} holds the token of the current
// holder; P{K}:token the last token minted (no expiry: one small key per lock
// name, kept so tokens survive the lock's expiry); P{K}:released is the
// channel. The braces keep all of them in one Redis Cluster slot.
package redislock

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/lock"
	"github.com/orderflow/orderflow/lock/internal/lease"
)

var _ orderflow.Locker = (*Locker)(nil)

// DefaultPrefix is put before every lock name when New is given none.
const DefaultPrefix = "orderflow:lock:"

// Locker takes locks in one Redis (or one Redis Cluster slot per lock). It
// is safe for concurrent use; the callers of one Locker wait for a key in
// FIFO order among themselves. Close it when done: it owns a pub/sub
// connection once anyone had to wait.
type Locker struct {
	rdb    redis.UniversalClient
	prefix string
	gates  gates
	n      notifier
}

// New returns a Locker on rdb. An empty prefix means DefaultPrefix. The caller
// keeps ownership of rdb.
func New(rdb redis.UniversalClient, prefix string) *Locker {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Locker{rdb: rdb, prefix: prefix, n: notifier{rdb: rdb}}
}

// Close ends the Locker's pub/sub connection and the goroutine reading it.
// Call it after every Acquire returned; leases already held keep working.
func (l *Locker) Close() error { return l.n.close() }

// LockKey is the Redis key that holds the current holder's token for key.
func (l *Locker) LockKey(key string) string { return l.prefix + "{" + key + "}" }

func (l *Locker) tokenKey(key string) string { return l.LockKey(key) + ":token" }
func (l *Locker) channel(key string) string  { return l.LockKey(key) + ":released" }

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
		sub *subscription
		ch  = l.channel(key)
	)
	defer func() {
		if sub != nil {
			l.n.leave(ch, sub)
		}
	}()
	for {
		// Taken before the try, so a release between the try and the
		// wait still wakes us.
		var wake <-chan struct{}
		if sub != nil {
			wake = l.n.waitChan(sub)
		}
		sent := time.Now()
		tok, pttl, err := l.try(ctx, key, ttl)
		if err != nil {
			return nil, l.fail(ctx, err, key)
		}
		if tok != 0 {
			return l.newLease(key, tok, ttl, sent, leave), nil
		}
		if sub == nil {
			if sub, err = l.n.join(ctx, ch); err != nil {
				return nil, l.fail(ctx, err, key)
			}
			// Until Redis confirms the subscription this is its
			// "ready" channel: a release before that is not heard,
			// so we try again once it is confirmed.
			wake = l.n.waitChan(sub)
		}
		wait := time.Duration(pttl)*time.Millisecond + time.Millisecond
		if pttl < 0 {
			wait = ttl
		}
		timer := time.NewTimer(wait)
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		if ctx.Err() != nil {
			return nil, lock.CtxErr(ctx, key)
		}
	}
}

// try runs the acquire script once: a non-zero token means held, otherwise
// pttl is how long the current holder has left.
func (l *Locker) try(ctx context.Context, key string, ttl time.Duration) (tok uint64, pttl int64, err error) {
	res, err := acquireScript.Run(ctx, l.rdb,
		[]string{l.LockKey(key), l.tokenKey(key)}, ttl.Milliseconds()).Slice()
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
			n, err := releaseScript.Run(ctx, l.rdb, lockKey, val, l.channel(key)).Int64()
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
