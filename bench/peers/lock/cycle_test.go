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

// acquireFunc takes key and returns how to release it.
type acquireFunc func(ctx context.Context, key string) (func(context.Context) error, error)

func ours(l *redislock.Locker) acquireFunc {
	return func(ctx context.Context, key string) (func(context.Context) error, error) {
		le, err := l.Acquire(ctx, key, 10*time.Second)
		if err != nil {
			return nil, err
		}
		return le.Release, nil
	}
}

func bsmLock(c *bsm.Client) acquireFunc {
	opt := &bsm.Options{RetryStrategy: bsm.LinearBackoff(10 * time.Millisecond)}
	return func(ctx context.Context, key string) (func(context.Context) error, error) {
		l, err := c.Obtain(ctx, key, 10*time.Second, opt)
		if err != nil {
			return nil, err
		}
		return l.Release, nil
	}
}

// cycles is the timed loop: take and release key, uncontended.
func cycles(b *testing.B, key string, acquire acquireFunc) {
	ctx := benchCtx(b)
	for b.Loop() {
		release, err := acquire(ctx, key)
		if err != nil {
			b.Fatal(err)
		}
		if err := release(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// contend takes and releases key from g goroutines at once, n times each,
// through acquire: afterwards the client's pool has about g connections and
// our Locker a subscription, as after the table's contended section.
func contend(b *testing.B, g, n int, key string, acquire acquireFunc) {
	ctx := benchCtx(b)
	var wg sync.WaitGroup
	for range g {
		wg.Go(func() {
			for range n {
				release, err := acquire(ctx, key)
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

func stamp() string { return time.Now().Format(time.RFC3339Nano) }

func BenchmarkCycleOurs(b *testing.B) {
	rdb := benchRedis(b)
	l := redislock.New(rdb, "bench:")
	defer l.Close()
	key := "cycle-" + stamp()
	defer rdb.Del(context.Background(), l.LockKey(key)+":token")
	cycles(b, key, ours(l))
}

func BenchmarkCycleBsm(b *testing.B) {
	cycles(b, "bench:cycle-bsm-"+stamp(), bsmLock(bsm.New(benchRedis(b))))
}

func BenchmarkCycleOursAfterContention(b *testing.B) {
	rdb := benchRedis(b)
	l := redislock.New(rdb, "bench:")
	defer l.Close()
	hot, key := "cycle-contended-"+b.Name(), "cycle-"+stamp()
	defer rdb.Del(context.Background(), l.LockKey(key)+":token", l.LockKey(hot)+":token")
	contend(b, 8, 50, hot, ours(l))
	cycles(b, key, ours(l))
}

func BenchmarkCycleBsmAfterContention(b *testing.B) {
	acquire := bsmLock(bsm.New(benchRedis(b)))
	contend(b, 8, 50, "bench:cycle-bsm-contended", acquire)
	cycles(b, "bench:cycle-bsm-"+stamp(), acquire)
}
