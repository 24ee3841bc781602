package redislock_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/lock/locktest"
	"github.com/orderflow/orderflow/lock/redislock"
)

// TestWaitersAcrossProcessesTakeTurns: Lockers with clients of their own
// stand for processes. While A holds the lock, B and then C queue; A releases
// and asks again at once. Without a queue A, one round trip closer, would
// usually win; with it the order is B, C, A.
func TestWaitersAcrossProcessesTakeTurns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	key := locktest.Key(t)
	lockers := map[string]*redislock.Locker{}
	for _, name := range []string{"A", "B", "C"} {
		rdb := mustClient(t, "tcp", redisAddr())
		lockers[name] = mustLocker(t, rdb, "orderflow:locktest:")
	}
	held, err := lockers["A"].Acquire(ctx, key, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	take := func(name string) {
		defer wg.Done()
		le, err := lockers[name].Acquire(ctx, key, 5*time.Second)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		mu.Lock()
		order = append(order, name)
		mu.Unlock()
		time.Sleep(10 * time.Millisecond)
		if err := le.Release(ctx); err != nil {
			t.Errorf("%s release: %v", name, err)
		}
	}
	wg.Add(3)
	go take("B")
	time.Sleep(200 * time.Millisecond) // B is queued
	go take("C")
	time.Sleep(200 * time.Millisecond) // C is queued behind B
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	take("A")
	wg.Wait()
	if got, want := order, []string{"B", "C", "A"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

// TestDeadWaiterLosesItsPlace: a waiter that died without leaving the queue
// holds the others up only until its place lapses, also when the lock is
// handed to it first.
func TestDeadWaiterLosesItsPlace(t *testing.T) {
	for _, tc := range []struct{ name, id string }{
		{"Malformed", "dead"},
		{"OfAGoneLocker", "GONELOCKER000000:1:10000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb := mustClient(t, "tcp", redisAddr())
			l := mustLocker(t, rdb, "orderflow:locktest:")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			key := locktest.Key(t)
			// The queue as a dead waiter leaves it: first in line, due in 500 ms.
			queue, due := l.LockKey(key)+":queue", l.LockKey(key)+":due"
			now, err := rdb.Time(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			if err := rdb.RPush(ctx, queue, tc.id).Err(); err != nil {
				t.Fatal(err)
			}
			if err := rdb.ZAdd(ctx, due, redisZ(float64(now.Add(500*time.Millisecond).UnixMilli()), tc.id)).Err(); err != nil {
				t.Fatal(err)
			}
			// And the mark a queued waiter leaves: an odd token counter
			// (here a missing one, as INCR makes it).
			if err := rdb.Incr(ctx, l.LockKey(key)+":token").Err(); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			le, err := l.Acquire(ctx, key, time.Second)
			if err != nil {
				t.Fatalf("Acquire behind a dead waiter: %v", err)
			}
			defer func() { _ = le.Release(ctx) }()
			if d := time.Since(start); d < 400*time.Millisecond || d > 3*time.Second {
				t.Errorf("got the lock after %v; the dead waiter's place lapsed after 500ms", d)
			}
		})
	}
}

// TestGrantToLeavingWaiterIsPassedOn: B waits behind A and gives up just as
// A releases. Whether the lock was handed to B or not, by the time B's
// Acquire returned it has been handed on to C, queued behind B, without
// waiting for C's next timed try (which comes 1 s after its last).
func TestGrantToLeavingWaiterIsPassedOn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	key := locktest.Key(t)
	lockers := map[string]*redislock.Locker{}
	var rdb *redis.Client
	for _, name := range []string{"A", "B", "C"} {
		rdb = mustClient(t, "tcp", redisAddr())
		lockers[name] = mustLocker(t, rdb, "orderflow:locktest:")
	}
	held, err := lockers["A"].Acquire(ctx, key, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	bctx, bcancel := context.WithCancel(ctx)
	bdone := make(chan error, 1)
	go func() {
		le, err := lockers["B"].Acquire(bctx, key, 10*time.Second)
		if err == nil {
			err = le.Release(ctx)
		}
		bdone <- err
	}()
	time.Sleep(200 * time.Millisecond) // B is queued
	cheld := make(chan error, 1)
	crelease := make(chan struct{})
	go func() {
		le, err := lockers["C"].Acquire(ctx, key, 10*time.Second)
		cheld <- err
		if err == nil {
			<-crelease
			err = le.Release(ctx)
		}
		cheld <- err
	}()
	time.Sleep(200 * time.Millisecond) // C is queued behind B
	bcancel()
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	<-bdone // canceled, or got and released the lock: either is fine
	// C holds the lock (or it is on its way to C): nobody else can.
	n, err := rdb.Exists(ctx, lockers["C"].LockKey(key)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Error("lock free after B left; want it handed on to C")
	}
	if err := <-cheld; err != nil {
		t.Fatalf("C: %v", err)
	}
	close(crelease)
	if err := <-cheld; err != nil {
		t.Errorf("C release: %v", err)
	}
}

func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }

// TestTokenAboveStored: when the stored counter is ahead of the server's
// clock (many tokens minted within a microsecond, or a clock that went back
// a little), the next token continues from it (a lock taken adds 2, the
// queue mark at most 1 more), whether the lock was taken at once or handed
// over to a waiter. A counter written by the previous scheme (the last
// token, in µs) is continued the same way.
func TestTokenAboveStored(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handoff bool
		local   bool // the waiter is a caller of the holder's Locker
	}{
		{"Taken", false, false},
		{"HandedOver", true, false},
		{"HandedOverInProcess", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			key := locktest.Key(t)
			rdb := mustClient(t, "tcp", redisAddr())
			a := mustLocker(t, rdb, "orderflow:locktest:")
			b := mustLocker(t, mustClient(t, "tcp", redisAddr()), "orderflow:locktest:")
			var held *redislock.Locker
			var first orderflow.Lease
			if tc.handoff {
				le, err := a.Acquire(ctx, key, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				first, held = le, b
				if tc.local {
					held = a
				}
			}
			// An hour ahead of the server's clock, in µs.
			now, err := rdb.Time(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			stored := uint64(now.Add(time.Hour).UnixMicro())
			if err := rdb.Set(ctx, a.LockKey(key)+":token", stored, 0).Err(); err != nil {
				t.Fatal(err)
			}
			got := make(chan uint64, 1)
			go func() {
				l := a
				if held != nil {
					l = held
				}
				le, err := l.Acquire(ctx, key, 5*time.Second)
				if err != nil {
					t.Error(err)
					got <- 0
					return
				}
				if err := le.Release(ctx); err != nil {
					t.Error(err)
				}
				got <- le.Token()
			}()
			if first != nil {
				time.Sleep(200 * time.Millisecond) // b is queued
				if err := first.Release(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if tok := <-got; tok <= stored || tok > stored+8 {
				t.Errorf("token %d, want just above %d (stored)", tok, stored)
			}
		})
	}
}

// TestLocalSuccessorWaitsBehindQueue: a release gives the lock straight to
// the next caller of the same Locker only when nobody waits in Redis. A1
// holds; B (another Locker) queues; A2 (A1's Locker) comes after B. The
// order is A1, B, A2, then A3, who came last (A2's release gives it the
// lock directly).
func TestLocalSuccessorWaitsBehindQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	key := locktest.Key(t)
	a := mustLocker(t, mustClient(t, "tcp", redisAddr()), "orderflow:locktest:")
	b := mustLocker(t, mustClient(t, "tcp", redisAddr()), "orderflow:locktest:")
	held, err := a.Acquire(ctx, key, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	take := func(name string, l *redislock.Locker) {
		defer wg.Done()
		le, err := l.Acquire(ctx, key, 5*time.Second)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		mu.Lock()
		order = append(order, name)
		mu.Unlock()
		time.Sleep(10 * time.Millisecond)
		if err := le.Release(ctx); err != nil {
			t.Errorf("%s release: %v", name, err)
		}
	}
	wg.Add(3)
	go take("B", b)
	time.Sleep(200 * time.Millisecond) // B is queued in Redis
	go take("A2", a)
	time.Sleep(200 * time.Millisecond) // A2 waits behind A1 in its Locker
	go take("A3", a)
	time.Sleep(200 * time.Millisecond) // A3 behind A2
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if got, want := order, []string{"B", "A2", "A3"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

// TestGiveUpWhileHandedOver: callers of one Locker and of another give up
// at random moments, some while a release is handing them the lock. Nobody
// holds it together with anybody else, and afterwards the lock is free at
// once: no abandoned hand-over keeps it.
func TestGiveUpWhileHandedOver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := locktest.Key(t)
	lockers := []*redislock.Locker{
		mustLocker(t, mustClient(t, "tcp", redisAddr()), "orderflow:locktest:"),
		mustLocker(t, mustClient(t, "tcp", redisAddr()), "orderflow:locktest:"),
	}
	var (
		inside, held atomic.Int64
		wg           sync.WaitGroup
	)
	for g := range 8 {
		l := lockers[g%2]
		wg.Go(func() {
			for i := range 40 {
				actx, acancel := context.WithTimeout(ctx, time.Duration(200+(g*37+i*53)%3000)*time.Microsecond)
				le, err := l.Acquire(actx, key, 5*time.Second)
				acancel()
				if err != nil {
					continue
				}
				held.Add(1)
				if n := inside.Add(1); n != 1 {
					t.Errorf("%d holders at once", n)
				}
				inside.Add(-1)
				if err := le.Release(ctx); err != nil {
					t.Errorf("Release: %v", err)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d of %d Acquires held the lock", held.Load(), 8*40)
	// Every abandoned grant was passed on or freed: the lock is free, or
	// about to be (a grant in flight to a gone waiter lapses with its
	// place); a fresh Acquire gets it well within the grant limit.
	actx, acancel := context.WithTimeout(ctx, 5*time.Second)
	defer acancel()
	le, err := lockers[0].Acquire(actx, key, time.Second)
	if err != nil {
		t.Fatalf("Acquire after the storm: %v", err)
	}
	_ = le.Release(ctx)
}

// TestQueueMarks: the fast scripts do not look at the queue; they rely on
// two marks the full scripts keep in step with it. While B waits behind a
// holder, the token counter is odd and the lock's value ends in "+"; once B
// gave up, both are cleared again.
func TestQueueMarks(t *testing.T) {
	rdb := mustClient(t, "tcp", redisAddr())
	l := mustLocker(t, rdb, "orderflow:locktest:")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := locktest.Key(t)
	lockKey, counter := l.LockKey(key), l.LockKey(key)+":token"
	if err := rdb.Set(ctx, lockKey, "holder", 5*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	defer rdb.Del(ctx, lockKey)
	marks := func() (int64, string) {
		t.Helper()
		n, err := rdb.Get(ctx, counter).Int64()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		v, err := rdb.Get(ctx, lockKey).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n, v
	}
	done := make(chan error, 1)
	go func() {
		actx, acancel := context.WithTimeout(ctx, 400*time.Millisecond)
		defer acancel()
		_, err := l.Acquire(actx, key, time.Second)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond) // B is queued
	if n, v := marks(); n%2 != 1 || v != "holder+" {
		t.Errorf("while B waits: counter %d, lock %q; want odd and \"holder+\"", n, v)
	}
	if err := <-done; err == nil {
		t.Fatal("B got a lock that was held")
	}
	if n, v := marks(); n%2 != 0 || v != "holder" {
		t.Errorf("after B gave up: counter %d, lock %q; want even and \"holder\"", n, v)
	}
}
