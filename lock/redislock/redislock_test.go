package redislock_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/lock/locktest"
	"github.com/orderflow/orderflow/lock/redislock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// redisAddr is the shared Redis of this machine, or $ORDERFLOW_TEST_REDIS.
func redisAddr() string {
	if a := os.Getenv("ORDERFLOW_TEST_REDIS"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// mustClient connects to Redis at addr (network "unix" for a socket path) or
// skips, see locktest.Unreachable. The client is closed when the test ends.
func mustClient(t testing.TB, network, addr string) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Network: network, Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		locktest.Unreachable(t, "Redis at "+addr, err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// breakable lets the suite delete the lock behind its holder's back, as an
// expiry or an empty restart would.
type breakable struct {
	*redislock.Locker
	rdb *redis.Client
}

func (b breakable) BreakLock(ctx context.Context, key string) error {
	return b.rdb.Del(ctx, b.LockKey(key)).Err()
}

func newLocker(t *testing.T) orderflow.Locker {
	rdb := mustClient(t, "tcp", redisAddr())
	return breakable{mustLocker(t, rdb, "orderflow:locktest:"), rdb}
}

func TestLocker(t *testing.T) { locktest.Run(t, newLocker) }

// mustLocker returns a Locker that is closed when the test ends. The token
// keys the test's locks left in Redis are deleted then too: they never expire
// (by design), and the shared Redis should not collect them. Only those: a
// helper process of RunFrozenHolder runs the same test while the parent holds.
func mustLocker(t testing.TB, rdb *redis.Client, prefix string) *redislock.Locker {
	l := redislock.New(rdb, prefix)
	if prefix == "" {
		prefix = redislock.DefaultPrefix
	}
	t.Cleanup(func() {
		_ = l.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"{locktest/"+t.Name()+"*}:token", 100).Iterator()
		for iter.Next(ctx) {
			_ = rdb.Del(ctx, iter.Val()).Err()
		}
	})
	return l
}
