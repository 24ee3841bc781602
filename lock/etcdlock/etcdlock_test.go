package etcdlock_test

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/lock/etcdlock"
	"github.com/orderflow/orderflow/lock/locktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// etcdEndpoint is the etcd scripts/services.sh starts, or $ORDERFLOW_TEST_ETCD.
func etcdEndpoint() string {
	if e := os.Getenv("ORDERFLOW_TEST_ETCD"); e != "" {
		return e
	}
	return "127.0.0.1:2379"
}

func mustClient(t *testing.T) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{etcdEndpoint()},
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = cli.Get(ctx, "health")
		cancel()
		if err != nil {
			_ = cli.Close()
		}
	}
	if err != nil {
		locktest.Unreachable(t, "etcd at "+etcdEndpoint(), err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// breakable lets the suite delete the lock's queue behind its holder's back.
type breakable struct {
	*etcdlock.Locker
	cli *clientv3.Client
}

func (b breakable) BreakLock(ctx context.Context, key string) error {
	_, err := b.cli.Delete(ctx, b.QueuePrefix(key), clientv3.WithPrefix())
	return err
}

func newLocker(t *testing.T) orderflow.Locker {
	cli := mustClient(t)
	l := etcdlock.New(cli, "/orderflow/locktest/")
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	return breakable{l, cli}
}

func TestLocker(t *testing.T) { locktest.Run(t, newLocker) }

func TestFrozenHolder(t *testing.T) { locktest.RunFrozenHolder(t, newLocker) }

// TestWaiterAheadGivesUp: B waits behind A and gives up; its key is deleted
// out of turn. C, queued behind B, must not count that as its turn while A
// still holds, and must get the lock once A releases. Both with one Locker
// (C joins the lock's watch before queueing) and with a Locker each.
func TestWaiterAheadGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name     string
		separate bool
	}{
		{"OneLocker", false},
		{"LockerEach", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli := mustClient(t)
			shared := etcdlock.New(cli, "/orderflow/locktest/")
			t.Cleanup(func() { _ = shared.Close(context.Background()) })
			locker := func() *etcdlock.Locker {
				if !tc.separate {
					return shared
				}
				l := etcdlock.New(cli, "/orderflow/locktest/")
				t.Cleanup(func() { _ = l.Close(context.Background()) })
				return l
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			key := locktest.Key(t)
			a, b, c := locker(), locker(), locker()
			held, err := a.Acquire(ctx, key, locktest.TTL)
			if err != nil {
				t.Fatal(err)
			}
			bctx, bcancel := context.WithCancel(ctx)
			bdone := make(chan error, 1)
			go func() {
				_, err := b.Acquire(bctx, key, locktest.TTL)
				bdone <- err
			}()
			time.Sleep(300 * time.Millisecond) // B is queued
			cgot := make(chan orderflow.Lease, 1)
			go func() {
				le, err := c.Acquire(ctx, key, locktest.TTL)
				if err != nil {
					t.Errorf("C: %v", err)
				}
				cgot <- le
			}()
			time.Sleep(300 * time.Millisecond) // C is queued behind B
			bcancel()
			if err := <-bdone; err == nil {
				t.Fatal("B got the lock while A held it")
			}
			select {
			case <-cgot:
				t.Fatal("C got the lock while A still held it")
			case <-time.After(500 * time.Millisecond):
			}
			if err := held.Release(ctx); err != nil {
				t.Fatal(err)
			}
			le := <-cgot
			if le == nil {
				return
			}
			if le.Token() <= held.Token() {
				t.Errorf("C's token %d not above A's %d", le.Token(), held.Token())
			}
			if err := le.Release(ctx); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestExclusionAcrossLockers: the contract suite's mutual exclusion, with a
// Locker per goroutine, as processes would have.
func TestExclusionAcrossLockers(t *testing.T) {
	cli := mustClient(t)
	key := locktest.Key(t)
	const goroutines, rounds = 6, 15
	var (
		inside atomic.Int64
		last   atomic.Uint64
		wg     sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range goroutines {
		l := etcdlock.New(cli, "/orderflow/locktest/")
		t.Cleanup(func() { _ = l.Close(context.Background()) })
		wg.Go(func() {
			for range rounds {
				le, err := l.Acquire(ctx, key, locktest.TTL)
				if err != nil {
					t.Errorf("Acquire: %v", err)
					return
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("%d holders at once", n)
				}
				if prev := last.Load(); le.Token() <= prev {
					t.Errorf("token %d after %d", le.Token(), prev)
				}
				last.Store(le.Token())
				inside.Add(-1)
				if err := le.Release(ctx); err != nil {
					t.Errorf("Release: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}
