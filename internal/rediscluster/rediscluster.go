// Package rediscluster starts a real, throwaway Redis Cluster on loopback for
// tests: three masters from the machine's redis-server binary, slots split
// evenly, no persistence, stopped and deleted at cleanup.
//
// It exists because "every key one script touches shares a hash tag" is a
// claim a single Redis cannot check: a standalone server runs any script on
// any keys, while a cluster refuses a script whose keys live in different
// slots (CROSSSLOT) and redirects a command to the node that owns the slot
// (MOVED). The contract suites run against the cluster this package starts
// show that the bus, the lock and the risk counters keep to it.
package rediscluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Masters is the number of nodes Start runs. Three is the smallest cluster
// redis-cli agrees to build, and enough for keys of one test to land on
// different nodes.
const Masters = 3

const slots = 16384

// Start runs a Redis Cluster of Masters nodes and returns a client of it,
// closed at cleanup. Without a redis-server binary it skips the test loudly,
// and fails it when CI=true (scripts/services.sh installs redis-server).
func Start(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis-server not found under CI: %v", err)
		}
		tb.Skipf("SKIPPED: redis-server not found (%v); scripts/services.sh installs it", err)
	}
	dir := tb.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	addrs := make([]string, Masters)
	for i := range addrs {
		addrs[i] = startNode(tb, bin, filepath.Join(dir, strconv.Itoa(i)))
	}
	nodes := make([]*redis.Client, Masters)
	for i, a := range addrs {
		nodes[i] = redis.NewClient(&redis.Options{Addr: a})
		defer nodes[i].Close()
		if err := waitPing(ctx, nodes[i], nil); err != nil {
			tb.Fatalf("rediscluster: node %s: %v", a, err)
		}
	}
	// Slots in equal ranges, then every node meets the first: the same as
	// `redis-cli --cluster create`, without needing redis-cli.
	for i, n := range nodes {
		lo, hi := i*slots/Masters, (i+1)*slots/Masters-1
		if err := n.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			tb.Fatalf("rediscluster: ADDSLOTSRANGE %d-%d on %s: %v", lo, hi, addrs[i], err)
		}
	}
	host, port, _ := net.SplitHostPort(addrs[0])
	for i, n := range nodes[1:] {
		if err := n.ClusterMeet(ctx, host, port).Err(); err != nil {
			tb.Fatalf("rediscluster: MEET from %s: %v", addrs[i+1], err)
		}
	}
	for i, n := range nodes {
		if err := waitClusterOK(ctx, n); err != nil {
			tb.Fatalf("rediscluster: node %s never reported a healthy cluster: %v", addrs[i], err)
		}
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: 16})
	tb.Cleanup(func() { _ = c.Close() })
	if err := c.ForEachShard(ctx, func(ctx context.Context, s *redis.Client) error {
		return s.Ping(ctx).Err()
	}); err != nil {
		tb.Fatalf("rediscluster: cluster client: %v", err)
	}
	return c
}

// startNode starts one cluster-enabled redis-server in dir on a free port
// whose cluster bus port (port + 10000) is free too, and stops it at cleanup.
func startNode(tb testing.TB, bin, dir string) string {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	logfile := filepath.Join(dir, "redis.log")
	for range 20 {
		port, err := freePort()
		if err != nil {
			tb.Fatal(err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd := exec.Command(bin,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000",
			"--save", "", "--appendonly", "no", "--dir", dir,
			"--logfile", logfile, "--daemonize", "no")
		if err := cmd.Start(); err != nil {
			tb.Fatalf("rediscluster: start %s: %v", bin, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }() // ends when the server does
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = waitPing(ctx, c, exited)
		cancel()
		_ = c.Close()
		if err == nil {
			tb.Cleanup(stop)
			return addr
		}
		stop()
		log, _ := os.ReadFile(logfile)
		if !strings.Contains(string(log), "Address already in use") {
			tb.Fatalf("rediscluster: redis-server on %s did not start: %v\n%s", addr, err, log)
		}
	}
	tb.Fatal("rediscluster: no free port pair after 20 attempts")
	return ""
}

// freePort returns a loopback port that is free, and whose cluster bus port
// is free too, at the moment of asking.
func freePort() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		if err != nil {
			continue
		}
		_ = bus.Close()
		return port, nil
	}
	return 0, errors.New("no free port pair")
}

// waitPing waits until c answers, the server exits (exited, when not nil,
// is closed), or ctx ends.
func waitPing(ctx context.Context, c *redis.Client, exited <-chan struct{}) error {
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-exited:
			return errors.New("redis-server exited")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func waitClusterOK(ctx context.Context, c *redis.Client) error {
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(Masters)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %q, %v)", ctx.Err(), info, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
