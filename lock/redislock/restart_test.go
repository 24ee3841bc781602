package redislock_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orderflow/orderflow/lock"
	"github.com/orderflow/orderflow/lock/locktest"
)

func TestFrozenHolder(t *testing.T) { locktest.RunFrozenHolder(t, newLocker) }

// privateRedis is a redis-server this test owns, on a unix socket, configured
// like the machine's (no RDB, no AOF), so that it can be killed and restarted
// without touching the Redis other tests share.
type privateRedis struct {
	t    *testing.T
	dir  string
	sock string
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		locktest.Unreachable(t, "redis-server (binary, for the restart test)", err)
	}
	dir := t.TempDir()
	r := &privateRedis{t: t, dir: dir, sock: filepath.Join(dir, "redis.sock")}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *privateRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", "0", "--unixsocket", r.sock,
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: r.sock})
	defer rdb.Close()
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if i == 100 {
			r.t.Fatalf("private redis-server did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the server the hard way: nothing is saved, as in a crash.
func (r *privateRedis) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// TestTokensSurviveEmptyRestart kills a private redis-server that runs without
// persistence, restarts it empty, and checks the next token is still larger
// than every token handed out before, and that the holder from before the
// restart learns it lost the lock and cannot release the new holder's.
func TestTokensSurviveEmptyRestart(t *testing.T) {
	srv := startPrivateRedis(t)
	rdb := mustClient(t, "unix", srv.sock)
	l := mustLocker(t, rdb, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := locktest.Key(t)

	var last uint64
	for range 50 {
		le, err := l.Acquire(ctx, key, 3*time.Second)
		if err != nil {
			t.Fatalf("Acquire: %v", err)
		}
		last = le.Token()
		if err := le.Release(ctx); err != nil {
			t.Fatalf("Release: %v", err)
		}
	}
	old, err := l.Acquire(ctx, key, 3*time.Second)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	if old.Token() <= last {
		t.Fatalf("token %d after %d", old.Token(), last)
	}

	srv.kill()
	srv.start()
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("restarted Redis has %d keys (%v), want an empty one", n, err)
	}

	// The lock is gone with the data, so this does not wait for the TTL.
	le, err := l.Acquire(ctx, key, 3*time.Second)
	if err != nil {
		t.Fatalf("Acquire after the restart: %v", err)
	}
	t.Logf("last token before the restart %d, first after %d", old.Token(), le.Token())
	if le.Token() <= old.Token() {
		t.Errorf("token went back after an empty restart: %d after %d", le.Token(), old.Token())
	}
	select {
	case <-old.Done():
	case <-time.After(10 * time.Second):
		t.Error("the pre-restart holder's Done did not close")
	}
	if err := old.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
		t.Errorf("pre-restart Release = %v, want lock.ErrNotHeld", err)
	}
	if n, err := rdb.Exists(ctx, l.LockKey(key)).Result(); err != nil || n != 1 {
		t.Errorf("the new holder's lock key exists=%d (%v) after the stale Release", n, err)
	}
	if err := le.Release(ctx); err != nil {
		t.Errorf("Release: %v", err)
	}
}

// TestWaiterWakesAtExpiry: a holder that died never publishes a release; the
// waiter must still get the lock as soon as the holder's TTL ends, on its own
// timer, not after some polling period.
func TestWaiterWakesAtExpiry(t *testing.T) {
	rdb := mustClient(t, "tcp", redisAddr())
	l := mustLocker(t, rdb, "orderflow:locktest:")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	key := locktest.Key(t)
	// A holder that died: the lock key with a TTL, and nobody to release it.
	if err := rdb.Set(ctx, l.LockKey(key), "1", 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	le, err := l.Acquire(ctx, key, time.Second)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	defer func() { _ = le.Release(ctx) }()
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("waited %v for a lock that expires after 300ms", d)
	}
}
