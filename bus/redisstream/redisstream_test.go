package redisstream_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/bus/bustest"
	"github.com/orderflow/orderflow/bus/redisstream"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// redisAddr is the shared Redis of this machine; tests use their own key
// prefix and delete their keys, never FLUSHALL.
const redisAddr = "127.0.0.1:6379"

// MustClient returns a client of the real Redis, closed at cleanup. It skips
// the test loudly when Redis is not there, and fails it under CI=true.
func MustClient(tb testing.TB) *redis.Client {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: 32})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		if os.Getenv("CI") == "true" {
			tb.Fatalf("Redis at %s unreachable under CI: %v", redisAddr, err)
		}
		tb.Skipf("SKIPPED: Redis at %s unreachable (%v); start it with scripts/services.sh", redisAddr, err)
	}
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

var prefixes atomic.Int64

// MustPrefix returns a key prefix unique to this test run and test, whose
// keys are deleted at cleanup.
func MustPrefix(tb testing.TB, rdb *redis.Client) string {
	tb.Helper()
	prefix := fmt.Sprintf("t:rs:%d:%d", os.Getpid(), prefixes.Add(1))
	tb.Cleanup(func() { deleteKeys(tb, rdb, prefix) })
	return prefix
}

func deleteKeys(tb testing.TB, rdb *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var keys []string
	flush := func() {
		if len(keys) > 0 {
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				tb.Errorf("cleanup of %s: %v", prefix, err)
			}
			keys = keys[:0]
		}
	}
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) >= 1000 {
			flush()
		}
	}
	flush()
	if err := iter.Err(); err != nil {
		tb.Errorf("cleanup scan of %s: %v", prefix, err)
	}
}

// testConfig keeps back-offs, claim times and grace short so tests run in
// seconds.
func testConfig(prefix string) redisstream.Config {
	return redisstream.Config{
		Prefix:        prefix,
		Partitions:    4,
		Consumer:      "test",
		MaxDeliveries: 3,
		BackoffBase:   time.Millisecond,
		BackoffMax:    10 * time.Millisecond,
		Block:         200 * time.Millisecond,
		ClaimIdle:     2 * time.Second,
		KeepAlive:     200 * time.Millisecond,
		ClaimInterval: 300 * time.Millisecond,
		ShutdownGrace: time.Second,
	}
}

func TestContract(t *testing.T) {
	for _, tc := range []struct {
		name        string
		entryEvents int
	}{
		// The default packs a Publish call's events of one partition
		// together; 1 gives every event its own entry.
		{"Packed", 0},
		{"OneEventPerEntry", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bustest.Run(t, bustest.Harness{
				MaxDeliveries: 3,
				Open: func(t *testing.T) bustest.Bus {
					rdb := MustClient(t)
					cfg := testConfig(MustPrefix(t, rdb))
					cfg.EntryEvents = tc.entryEvents
					b := redisstream.New(rdb, cfg)
					return bustest.Bus{
						Consumer:    b,
						DeadLetters: b,
						Publish: func(ctx context.Context, evs ...orderflow.Event) error {
							return b.Publish(ctx, evs)
						},
						// A restarted process: a new client, the same consumer name.
						Restart: func(t *testing.T) orderflow.Consumer {
							return redisstream.New(MustClient(t), cfg)
						},
					}
				},
			})
		})
	}
}
