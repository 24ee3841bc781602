package etcdlock

import (
	"context"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/lock/locktest"
)

// TestWaiterSurvivesBrokenWatch: the watch a waiter counts on ends (as on a
// compaction or a lost leader); the waiter counts again on a new one and
// still gets the lock when, and only when, the holder releases it.
func TestWaiterSurvivesBrokenWatch(t *testing.T) {
	ep := os.Getenv("ORDERFLOW_TEST_ETCD")
	if ep == "" {
		ep = "127.0.0.1:2379"
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		locktest.Unreachable(t, "etcd at "+ep, err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.Get(ctx, "health"); err != nil {
		locktest.Unreachable(t, "etcd at "+ep, err)
	}
	key := "watchtest/" + time.Now().Format(time.RFC3339Nano)
	holder, waiter := New(cli, "/orderflow/locktest/"), New(cli, "/orderflow/locktest/")
	defer holder.Close(context.Background())
	defer waiter.Close(context.Background())
	held, err := holder.Acquire(ctx, key, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		le, err := waiter.Acquire(ctx, key, 3*time.Second)
		if err == nil {
			err = le.Release(ctx)
		}
		got <- err
	}()
	// Wait until the waiter watches, then break its watch.
	pfx := waiter.QueuePrefix(key)
	for {
		waiter.watches.mu.Lock()
		w := waiter.watches.m[pfx]
		ready := w != nil && isClosed(w.created) && len(w.waiters) == 1
		waiter.watches.mu.Unlock()
		if ready {
			w.cancel()
			<-w.broken
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-got:
		t.Fatalf("waiter returned while the holder held the lock: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("waiter after the watch broke: %v", err)
	}
}
