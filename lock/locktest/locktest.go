// Package locktest is the one contract suite every orderflow.Locker passes:
// mutual exclusion, strictly increasing fencing tokens, release and re-acquire,
// context handling, Done on loss, and the fencing that makes a stale holder
// harmless. Each implementation's tests call Run with a constructor, and the
// distributed ones also RunFrozenHolder.
package locktest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/lock"
)

// Breaker is the test hook a Locker given to Run implements so the suite can
// end a lease behind its holder's back, the way an expiry, an operator or a
// restarted server would. Run needs it for the loss tests.
type Breaker interface {
	BreakLock(ctx context.Context, key string) error
}

// TTL is the lease TTL the suite uses: etcd does not grant less than about
// two seconds, and the suite wants one TTL for every backend.
const TTL = 3 * time.Second

// Key returns a lock key no other test, run or process uses.
func Key(tb testing.TB) string {
	return fmt.Sprintf("locktest/%s/%d", tb.Name(), time.Now().UnixNano())
}

// Run runs the contract suite against lockers made by newLocker.
func Run(t *testing.T, newLocker func(t *testing.T) orderflow.Locker) {
	t.Run("InvalidArguments", func(t *testing.T) { testInvalid(t, newLocker(t)) })
	t.Run("MutualExclusion", func(t *testing.T) { testExclusion(t, newLocker(t)) })
	t.Run("TokensIncrease", func(t *testing.T) { testTokens(t, newLocker(t)) })
	t.Run("ReleaseThenReacquire", func(t *testing.T) { testReacquire(t, newLocker(t)) })
	t.Run("AcquireRespectsContext", func(t *testing.T) { testContext(t, newLocker(t)) })
	t.Run("DoneClosesOnLoss", func(t *testing.T) { testDone(t, newLocker(t)) })
	t.Run("StaleReleaseKeepsNewHolder", func(t *testing.T) { testStaleRelease(t, newLocker(t)) })
	t.Run("StaleWriteRejected", func(t *testing.T) { testStaleWrite(t, newLocker(t)) })
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustAcquire(t *testing.T, l orderflow.Locker, key string) orderflow.Lease {
	t.Helper()
	le, err := l.Acquire(ctxFor(t, 10*time.Second), key, TTL)
	if err != nil {
		t.Fatalf("Acquire(%q): %v", key, err)
	}
	return le
}

func release(t *testing.T, le orderflow.Lease) {
	t.Helper()
	if err := le.Release(ctxFor(t, 5*time.Second)); err != nil {
		t.Errorf("Release: %v", err)
	}
}

func breaker(t *testing.T, l orderflow.Locker) Breaker {
	t.Helper()
	b, ok := l.(Breaker)
	if !ok {
		t.Fatalf("%T does not implement locktest.Breaker: wrap it in the test so the suite can break a lease", l)
	}
	return b
}

func testInvalid(t *testing.T, l orderflow.Locker) {
	for _, tc := range []struct {
		name string
		key  string
		ttl  time.Duration
	}{
		{"EmptyKey", "", TTL},
		{"ZeroTTL", Key(t), 0},
		{"NegativeTTL", Key(t), -time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			le, err := l.Acquire(ctxFor(t, time.Second), tc.key, tc.ttl)
			if got, want := orderflow.ErrorCode(err), orderflow.EInvalid; got != want {
				if le != nil {
					_ = le.Release(context.Background())
				}
				t.Fatalf("Acquire error code = %q (%v), want %q", got, err, want)
			}
		})
	}
}

// testExclusion has N goroutines take the lock M times each and do a
// deliberately non-atomic read-yield-write of a counter inside it: any overlap
// loses an increment. Holders also check the token grew since the last holder.
func testExclusion(t *testing.T, l orderflow.Locker) {
	const goroutines, rounds = 8, 25
	key := Key(t)
	var inside, counter atomic.Int64
	var lastToken atomic.Uint64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range rounds {
				le, err := l.Acquire(ctxFor(t, 30*time.Second), key, TTL)
				if err != nil {
					t.Errorf("Acquire: %v", err)
					return
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("%d holders inside the lock at once", n)
				}
				if prev := lastToken.Load(); le.Token() <= prev {
					t.Errorf("token %d after %d: not strictly increasing", le.Token(), prev)
				}
				lastToken.Store(le.Token())
				v := counter.Load()
				runtime.Gosched()
				counter.Store(v + 1)
				inside.Add(-1)
				if err := le.Release(ctxFor(t, 5*time.Second)); err != nil {
					t.Errorf("Release: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got, want := counter.Load(), int64(goroutines*rounds); got != want {
		t.Errorf("counter = %d, want %d: increments were lost to overlapping holders", got, want)
	}
}

func testTokens(t *testing.T, l orderflow.Locker) {
	key := Key(t)
	var prev uint64
	for i := range 20 {
		le := mustAcquire(t, l, key)
		if le.Token() <= prev {
			t.Errorf("holder %d: token %d after %d", i, le.Token(), prev)
		}
		prev = le.Token()
		release(t, le)
	}
	// Another key has its own sequence, but it must not disturb this one.
	other := mustAcquire(t, l, key+"/other")
	release(t, other)
	le := mustAcquire(t, l, key)
	defer release(t, le)
	if le.Token() <= prev {
		t.Errorf("token %d after %d", le.Token(), prev)
	}
}

func testReacquire(t *testing.T, l orderflow.Locker) {
	key := Key(t)
	a := mustAcquire(t, l, key)
	release(t, a)
	select {
	case <-a.Done():
	default:
		t.Error("Done of a released lease is still open")
	}
	if err := a.Release(ctxFor(t, time.Second)); err != nil {
		t.Errorf("second Release = %v, want the first call's nil", err)
	}
	// The lock must be free at once, not after the TTL.
	b, err := l.Acquire(ctxFor(t, TTL/3), key, TTL)
	if err != nil {
		t.Fatalf("re-Acquire after Release: %v", err)
	}
	release(t, b)
}

func testContext(t *testing.T, l orderflow.Locker) {
	key := Key(t)
	held := mustAcquire(t, l, key)
	for _, tc := range []struct {
		name     string
		ctx      func() (context.Context, context.CancelFunc)
		want     error
		wantCode string
	}{
		{"Deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}, context.DeadlineExceeded, orderflow.EDeadlineExceeded},
		{"Cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled, orderflow.EUnavailable},
		{"AlreadyDone", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled, orderflow.EUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			le, err := l.Acquire(ctx, key, TTL)
			if err == nil {
				_ = le.Release(context.Background())
				t.Fatal("Acquire of a held lock succeeded")
			}
			if !errors.Is(err, tc.want) || orderflow.ErrorCode(err) != tc.wantCode {
				t.Errorf("err = %v (code %q), want %v with code %q", err, orderflow.ErrorCode(err), tc.want, tc.wantCode)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Acquire returned %v after the context ended", d)
			}
		})
	}
	// A waiter that gave up must not stand in the next one's way.
	release(t, held)
	le, err := l.Acquire(ctxFor(t, TTL/3), key, TTL)
	if err != nil {
		t.Fatalf("Acquire after abandoned waits: %v", err)
	}
	release(t, le)
}

func testDone(t *testing.T, l orderflow.Locker) {
	key := Key(t)
	le := mustAcquire(t, l, key)
	select {
	case <-le.Done():
		t.Fatal("Done closed on a fresh lease")
	default:
	}
	if err := breaker(t, l).BreakLock(ctxFor(t, 5*time.Second), key); err != nil {
		t.Fatalf("BreakLock: %v", err)
	}
	select {
	case <-le.Done():
	case <-time.After(TTL):
		t.Fatalf("Done still open %v after the lock was broken", TTL)
	}
	if err := le.Release(ctxFor(t, 5*time.Second)); !errors.Is(err, lock.ErrNotHeld) {
		t.Errorf("Release of a lost lease = %v, want lock.ErrNotHeld", err)
	}
}

// testStaleRelease: A's lease is broken, B takes the lock, A releases. B must
// still hold it: nobody else gets in while B has not released.
func testStaleRelease(t *testing.T, l orderflow.Locker) {
	key := Key(t)
	a := mustAcquire(t, l, key)
	if err := breaker(t, l).BreakLock(ctxFor(t, 5*time.Second), key); err != nil {
		t.Fatalf("BreakLock: %v", err)
	}
	b := mustAcquire(t, l, key)
	defer release(t, b)
	if b.Token() <= a.Token() {
		t.Errorf("new holder's token %d is not above the stale one's %d", b.Token(), a.Token())
	}
	err := a.Release(ctxFor(t, 5*time.Second))
	if !errors.Is(err, lock.ErrNotHeld) || orderflow.ErrorCode(err) != orderflow.EConflict {
		t.Errorf("stale Release = %v, want lock.ErrNotHeld with code conflict", err)
	}
	if c, err := l.Acquire(ctxFor(t, 300*time.Millisecond), key, TTL); err == nil {
		_ = c.Release(context.Background())
		t.Fatal("a third holder got the lock: the stale Release freed the new holder's lock")
	}
	select {
	case <-b.Done():
		t.Error("the new holder's Done closed after the stale Release")
	default:
	}
}

// testStaleWrite is the point of fencing: a holder that lost its lease and
// does not know it writes anyway, after the new holder wrote. The store
// refuses the older token.
func testStaleWrite(t *testing.T, l orderflow.Locker) {
	fence := OpenFence(t)
	ctx := ctxFor(t, 30*time.Second)
	key := Key(t)
	a := mustAcquire(t, l, key)
	if ok, err := fence.Write(ctx, key, a.Token(), "a-first"); err != nil || !ok {
		t.Fatalf("first holder's write: accepted=%v err=%v", ok, err)
	}
	if err := breaker(t, l).BreakLock(ctx, key); err != nil {
		t.Fatalf("BreakLock: %v", err)
	}
	b := mustAcquire(t, l, key)
	defer release(t, b)
	if ok, err := fence.Write(ctx, key, b.Token(), "b"); err != nil || !ok {
		t.Fatalf("new holder's write: accepted=%v err=%v", ok, err)
	}
	// A writes without looking at Done, as a holder paused at the wrong
	// moment would.
	if ok, err := fence.Write(ctx, key, a.Token(), "a-stale"); err != nil || ok {
		t.Fatalf("stale holder's write: accepted=%v err=%v, want rejected", ok, err)
	}
	_, got, err := fence.Read(ctx, key)
	if err != nil || got != "b" {
		t.Fatalf("fenced value = %q (%v), want %q", got, err, "b")
	}
	_ = a.Release(ctx)
}
