package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/store/sqlite"
	"github.com/orderflow/orderflow/telemetry"
)

// served is an in-process `orderflow serve` started exactly as run would,
// with test hooks set on the app before it runs.
type served struct {
	app    *app
	public string // http://host:port
	admin  string
	stop   func() // ends the app and waits for it; safe to call twice
}

// startServe runs serve in process on a fresh SQLite file; setup may set
// hooks on the app before it starts. The app stops at cleanup.
func startServe(t *testing.T, setup func(a *app), args ...string) *served {
	t.Helper()
	var c config
	fs := newFlagSet("serve", &c)
	base := []string{"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--sweep-interval", "500ms"}
	if raceEnabled {
		base = append(base, "--callback-timeout", "5s")
	}
	if err := parseFlags(fs, append(base, args...), func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "orderflow.db"))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	addrs := make(chan [2]string, 1)
	var got [2]string
	a := &app{
		cfg: c, mode: modeServe, log: telemetry.NewLogger(t.Output(), slog.LevelWarn), store: st,
		secrets: [][]byte{[]byte("serve-test-secret")},
		onListen: func(name, addr string) {
			switch name {
			case "public":
				got[0] = "http://" + addr
			case "admin":
				got[1] = "http://" + addr
				addrs <- got
			}
		},
	}
	if setup != nil {
		setup(a)
	}
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	s := &served{app: a}
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve stopped with %v", err)
			}
		})
	}
	t.Cleanup(s.stop)
	select {
	case a := <-addrs:
		s.public, s.admin = a[0], a[1]
	case err := <-done:
		t.Fatalf("serve did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start listening")
	}
	return s
}

// createOrders creates n orders with `workers` concurrent clients and
// returns their ids.
func createOrders(t *testing.T, c *http.Client, base string, n, workers int) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				ids[i] = createOrder(t, c, base, fmt.Sprintf("u_e2e_%d", i%97))
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return ids
}

// count runs a COUNT query against the app's store.
func count(t *testing.T, a *app, q string, args ...any) int {
	t.Helper()
	var n int
	if err := a.store.ReadDB().QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// waitFor polls progress until it reports done. It fails only when progress
// stops moving for stall: under the race detector on a shared machine the
// pipeline is many times slower, and a fixed deadline would measure the
// machine, while a stall is what a lost event looks like.
func waitFor(t *testing.T, stall time.Duration, what string, progress func() (done bool, n int, state string)) {
	t.Helper()
	last, lastMove := -1, time.Now()
	for {
		done, n, state := progress()
		if done {
			return
		}
		if n != last {
			last, lastMove = n, time.Now()
		}
		if time.Since(lastMove) > stall {
			t.Fatalf("%s: no progress for %v: %s", what, stall, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
