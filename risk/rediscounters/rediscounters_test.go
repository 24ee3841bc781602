package rediscounters_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/risk"
	"github.com/orderflow/orderflow/risk/counterstest"
	"github.com/orderflow/orderflow/risk/rediscounters"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func redisAddr() string {
	if a := os.Getenv("ORDERFLOW_TEST_REDIS"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// client connects to the shared test Redis, skipping loudly when it is not
// there (failing when CI=true).
func client(tb testing.TB) *redis.Client {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr()})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		msg := fmt.Sprintf("Redis at %s is unreachable (%v): start it with scripts/services.sh", redisAddr(), err)
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip("SKIPPED, NOT TESTED: " + msg)
	}
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// newCounters returns counters under a prefix of their own; the keys are
// deleted at cleanup (the Redis is shared with other tests).
func newCounters(tb testing.TB, rdb *redis.Client, maxEvents int) *rediscounters.Counters {
	tb.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "test:rc:" + hex.EncodeToString(b) + ":"
	tb.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	c, err := rediscounters.New(rediscounters.Config{Client: rdb, Prefix: prefix, MaxEvents: maxEvents})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestContract: the same suite as the in-memory counters, so the features a
// model sees do not depend on where the counters live.
func TestContract(t *testing.T) {
	rdb := client(t)
	counterstest.Test(t, func(t *testing.T) risk.Counters { return newCounters(t, rdb, 0) })
}

func TestRetentionAndCap(t *testing.T) {
	rdb := client(t)
	ctx := context.Background()
	c := newCounters(t, rdb, 5)
	var s risk.Snapshot
	for i := range 8 {
		var err error
		s, err = c.Observe(ctx, risk.Observation{OrderID: "o" + strconv.Itoa(i), UserID: "u-cap", DeviceID: "d" + strconv.Itoa(i),
			AmountMinor: 100, At: counterstest.T0.Add(time.Duration(i) * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.Orders1h != 5 || s.Devices24h != 5 || s.PriorOrders != 7 {
		t.Errorf("capped at 5: got 1h %d, devices %d, prior %d; want 5, 5, 7", s.Orders1h, s.Devices24h, s.PriorOrders)
	}
	keys, err := rdb.Keys(ctx, "*{u-cap}*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl < 24*time.Hour || ttl > 25*time.Hour {
			t.Errorf("%s: TTL %v, want 25 h", k, ttl)
		}
	}
	if n, err := rdb.HLen(ctx, keys[0][:len(keys[0])-2]+":d").Result(); err != nil || n != 5 {
		t.Errorf("device hash holds %d entries (%v), want 5: trimmed orders leave with their device", n, err)
	}
}

func BenchmarkObserve(b *testing.B) {
	rdb := client(b)
	c := newCounters(b, rdb, 0)
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		w := hex.EncodeToString(b)
		i := 0
		for pb.Next() {
			i++
			_, err := c.Observe(ctx, risk.Observation{OrderID: w + strconv.Itoa(i), UserID: "u" + strconv.Itoa(i%1000),
				DeviceID: "d" + strconv.Itoa(i%7), AmountMinor: 1234, At: counterstest.T0.Add(time.Duration(i) * time.Millisecond)})
			if err != nil {
				panic(err)
			}
		}
	})
}
