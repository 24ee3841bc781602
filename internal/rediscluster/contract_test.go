package rediscluster_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/bus/bustest"
	"github.com/orderflow/orderflow/bus/redisstream"
	"github.com/orderflow/orderflow/internal/rediscluster"
	"github.com/orderflow/orderflow/lock/locktest"
	"github.com/orderflow/orderflow/lock/redislock"
	"github.com/orderflow/orderflow/risk"
	"github.com/orderflow/orderflow/risk/counterstest"
	"github.com/orderflow/orderflow/risk/rediscounters"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The contract suites of the Redis-backed parts, run on a real three-node
// Redis Cluster: a script whose keys span slots fails there with CROSSSLOT,
// and a command sent to the wrong node is redirected, so these pass only if
// every part keeps each script's keys in one hash tag and routes by key.

func TestBusContractOnCluster(t *testing.T) {
	c := rediscluster.Start(t)
	n := 0
	bustest.Run(t, bustest.Harness{
		MaxDeliveries: 3,
		Events:        2000, // the volume case's 10,000 add nothing here but time
		Open: func(t *testing.T) bustest.Bus {
			n++
			cfg := redisstream.Config{
				Prefix:        fmt.Sprintf("cl%d", n),
				Partitions:    8, // spread over the three nodes
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
			b := redisstream.New(c, cfg)
			return bustest.Bus{
				Consumer:    b,
				DeadLetters: b,
				Publish: func(ctx context.Context, evs ...orderflow.Event) error {
					return b.Publish(ctx, evs)
				},
				Restart: func(t *testing.T) orderflow.Consumer { return redisstream.New(c, cfg) },
			}
		},
	})
	assertSpread(t, c)
}

func TestCountersContractOnCluster(t *testing.T) {
	c := rediscluster.Start(t)
	n := 0
	counterstest.Test(t, func(t *testing.T) risk.Counters {
		n++
		rc, err := rediscounters.New(rediscounters.Config{Client: c, Prefix: fmt.Sprintf("cl%d:", n)})
		if err != nil {
			t.Fatal(err)
		}
		return rc
	})
}

// breakable lets the lock suite end a lease behind its holder's back.
type breakable struct {
	*redislock.Locker
	rdb redis.UniversalClient
}

func (b breakable) BreakLock(ctx context.Context, key string) error {
	return b.rdb.Del(ctx, b.LockKey(key)).Err()
}

func TestLockContractOnCluster(t *testing.T) {
	c := rediscluster.Start(t)
	n := 0
	locktest.Run(t, func(t *testing.T) orderflow.Locker {
		n++
		l := redislock.New(c, fmt.Sprintf("cl%d:", n))
		t.Cleanup(func() { _ = l.Close() })
		return breakable{l, c}
	})
}

// assertSpread checks that the suite's keys did not all land on one node:
// a cluster that holds everything on one shard would prove nothing.
func assertSpread(t *testing.T, c *redis.ClusterClient) {
	t.Helper()
	ctx := context.Background()
	var withKeys atomic.Int32 // ForEachMaster calls back concurrently
	if err := c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		k, err := n.DBSize(ctx).Result()
		if err == nil && k > 0 {
			withKeys.Add(1)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if withKeys := withKeys.Load(); withKeys < 2 {
		t.Errorf("keys on %d of %d nodes: the suite did not exercise more than one shard", withKeys, rediscluster.Masters)
	}
}
