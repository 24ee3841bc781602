package main

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	bsm "github.com/bsm/redislock"
	"github.com/redis/go-redis/v9"

	"github.com/orderflow/orderflow/lock/redislock"
)

// The uncontended cycle of the table's first section, as Go benchmarks, for
// profiling one implementation at a time (-cpuprofile, -benchmem):
//
//	LOCKBENCH_REDIS=127.0.0.1:6391 go test -run XXX -bench Cycle -benchmem ./lock

func benchRedis(b *testing.B) *redis.Client {
	addr := os.Getenv("LOCKBENCH_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		b.Skipf("no Redis at %s: %v", addr, err)
	}
	b.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// benchCtx has a deadline, as measure's has: bsm's Obtain adds one (and a
// timer) to a context without.
func benchCtx(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	b.Cleanup(cancel)
	return ctx
}

func BenchmarkCycleOurs(b *testing.B) {
	rdb := benchRedis(b)
	l := redislock.New(rdb, "bench:")
	defer l.Close()
	ctx := benchCtx(b)
	key := "cycle-" + time.Now().Format(time.RFC3339Nano)
	defer rdb.Del(ctx, l.LockKey(key)+":token")
	for b.Loop() {
		le, err := l.Acquire(ctx, key, 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		if err := le.Release(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCycleBsm(b *testing.B) {
	c := bsm.New(benchRedis(b))
	ctx := benchCtx(b)
	key := "bench:cycle-bsm-" + time.Now().Format(time.RFC3339Nano)
	opt := &bsm.Options{RetryStrategy: bsm.LinearBackoff(10 * time.Millisecond)}
	for b.Loop() {
		l, err := c.Obtain(ctx, key, 10*time.Second, opt)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// contend takes and releases key from g goroutines at once, n times each,
// through acquire: afterwards the client's pool has about g connections and
// our Locker a subscription, as after the table's contended section.
func contend(b *testing.B, g, n int, acquire func(context.Context) (func(context.Context) error, error)) {
	ctx := benchCtx(b)
	var wg sync.WaitGroup
	for range g {
		wg.Go(func() {
			for range n {
				release, err := acquire(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				_ = release(ctx)
			}
		})
	}
	wg.Wait()
}

func BenchmarkCycleOursAfterContention(b *testing.B) {
	rdb := benchRedis(b)
	l := redislock.New(rdb, "bench:")
	defer l.Close()
	contend(b, 8, 50, func(ctx context.Context) (func(context.Context) error, error) {
		le, err := l.Acquire(ctx, "cycle-contended-"+b.Name(), 10*time.Second)
		if err != nil {
			return nil, err
		}
		return le.Release, nil
	})
	ctx := benchCtx(b)
	key := "cycle-" + time.Now().Format(time.RFC3339Nano)
	defer rdb.Del(ctx, l.LockKey(key)+":token", l.LockKey("cycle-contended-"+b.Name())+":token")
	b.ResetTimer()
	for b.Loop() {
		le, err := l.Acquire(ctx, key, 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		if err := le.Release(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCycleBsmAfterContention(b *testing.B) {
	c := bsm.New(benchRedis(b))
	opt := &bsm.Options{RetryStrategy: bsm.LinearBackoff(10 * time.Millisecond)}
	contend(b, 8, 50, func(ctx context.Context) (func(context.Context) error, error) {
		l, err := c.Obtain(ctx, "bench:cycle-bsm-contended", 10*time.Second, opt)
		if err != nil {
			return nil, err
		}
		return l.Release, nil
	})
	ctx := benchCtx(b)
	key := "bench:cycle-bsm-" + time.Now().Format(time.RFC3339Nano)
	for b.Loop() {
		l, err := c.Obtain(ctx, key, 10*time.Second, opt)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
