// Package lock holds what the three orderflow.Locker implementations share
// with their callers: the sentinel a caller tests for when a lease turned out
// to be lost, and the argument checks every Acquire makes.
//
// The implementations live in the subpackages: local (one process, for
// `orderflow serve`), redislock (Redis, Lua scripts) and etcdlock (etcd, lease
// plus txn). locktest is the one contract suite all three pass. docs/locks.md
// explains the fencing tokens and how a store must check them.
package lock

import (
	"context"
	"errors"
	"time"

	"github.com/orderflow/orderflow"
)

// ErrNotHeld is returned (wrapped in an *orderflow.Error with code conflict)
// by Release when the lease had already been lost: it expired, or the lock was
// broken behind its holder's back. Such a Release changes nothing, in
// particular it never releases the lock of whoever holds it now.
var ErrNotHeld = errors.New("lock: lease no longer held")

// NotHeld returns the error Release gives for a lost lease on key.
func NotHeld(key string) error {
	return orderflow.Wrap(orderflow.EConflict, ErrNotHeld, "lock %q was lost before release", key)
}

// Check validates the arguments of Acquire. min is the smallest TTL the
// backend can honour.
func Check(key string, ttl, min time.Duration) error {
	if key == "" {
		return orderflow.Invalid("key", "lock key is empty")
	}
	if ttl < min {
		return orderflow.Invalid("ttl", "lock ttl %v is below the minimum %v", ttl, min)
	}
	return nil
}

// CtxErr maps the end of an Acquire's context to a coded error, keeping the
// context's error in the chain so errors.Is(err, context.Canceled) works.
func CtxErr(ctx context.Context, key string) error {
	err := ctx.Err()
	if err == nil {
		err = context.Cause(ctx)
	}
	code := orderflow.EUnavailable
	if errors.Is(err, context.DeadlineExceeded) {
		code = orderflow.EDeadlineExceeded
	}
	return orderflow.Wrap(code, err, "acquiring lock %q", key)
}

// Unavailable wraps a backend failure during op on key.
func Unavailable(err error, op, key string) error {
	return orderflow.Wrap(orderflow.EUnavailable, err, "%s lock %q", op, key)
}
