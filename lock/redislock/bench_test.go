package redislock_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orderflow/orderflow/lock/locktest"
)

// BenchmarkAcquireRelease is one uncontended cycle with a fencing token: two
// script round trips, plus the lease's bookkeeping.
func BenchmarkAcquireRelease(b *testing.B) {
	rdb := mustClient(b, "tcp", redisAddr())
	l := mustLocker(b, rdb, "orderflow:bench:")
	ctx := context.Background()
	key := locktest.Key(b)
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

var (
	bareLock = redis.NewScript(`return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])`)
	bareFree = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)
)

// BenchmarkBareScripts is the floor BenchmarkAcquireRelease is measured
// against: the same two round trips with the smallest scripts that lock and
// unlock, no token, no lease.
func BenchmarkBareScripts(b *testing.B) {
	rdb := mustClient(b, "tcp", redisAddr())
	ctx := context.Background()
	key := "orderflow:bench:bare-" + time.Now().Format(time.RFC3339Nano)
	for b.Loop() {
		if err := bareLock.Run(ctx, rdb, []string{key}, "v", 10000).Err(); err != nil {
			b.Fatal(err)
		}
		if err := bareFree.Run(ctx, rdb, []string{key}, "v").Err(); err != nil {
			b.Fatal(err)
		}
	}
}
