package redislock_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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
// holds the others up only until its place lapses.
func TestDeadWaiterLosesItsPlace(t *testing.T) {
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
	if err := rdb.RPush(ctx, queue, "dead").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ZAdd(ctx, due, redisZ(float64(now.Add(500*time.Millisecond).UnixMilli()), "dead")).Err(); err != nil {
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
}

func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }
