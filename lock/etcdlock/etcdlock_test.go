package etcdlock_test

import (
	"context"
	"os"
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
