package sqlite_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/store/sqlite"
)

// TestCommitLingerGathersConcurrentWrites: with writes arriving in pairs
// every 2 ms, a linger of 30 ms makes each commit carry many of them.
func TestCommitLingerGathersConcurrentWrites(t *testing.T) {
	s := MustOpen(t, sqlite.WithCommitLinger(30*time.Millisecond))
	ctx := context.Background()
	before := s.Stats()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 50 {
		for range 2 {
			wg.Go(func() {
				if err := s.Write(ctx, noop); err != nil {
					errs <- err
				}
			})
		}
		time.Sleep(2 * time.Millisecond)
	}
	writes, commits, largest := writesDone(t, &wg, errs, s, before)
	t.Logf("%d writes in %d commits, largest batch %d", writes, commits, largest)
	if writes != 100 || commits > writes/4 {
		t.Fatalf("%d writes in %d commits: want 100 in at most 25", writes, commits)
	}
}

// TestCommitLingerSparesLoneWrites: one write at a time never waits for
// company, however long the linger.
func TestCommitLingerSparesLoneWrites(t *testing.T) {
	s := MustOpen(t, sqlite.WithCommitLinger(time.Hour))
	ctx := context.Background()
	for range 5 {
		start := time.Now()
		if err := s.Write(ctx, noop); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("a lone write took %s", d)
		}
	}
}

// TestCommitLingerEndsAtClose: a commit lingering for more writes stops
// waiting when the store closes, and every queued write is committed.
func TestCommitLingerEndsAtClose(t *testing.T) {
	s, err := sqlite.Open(context.Background(), t.TempDir()+"/of.db", sqlite.WithCommitLinger(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Two writes at once make the writer linger on the next batch.
	var wg sync.WaitGroup
	results := make(chan error, 4)
	for range 2 {
		wg.Go(func() { results <- s.Write(ctx, noop) })
	}
	wg.Wait()
	for range 2 {
		wg.Go(func() { results <- s.Write(ctx, noop) })
	}
	time.Sleep(50 * time.Millisecond) // queued, or held by the linger
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close waited for the linger")
	}
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Errorf("write: %v", err)
		}
	}
}

func TestCommitLingerNegativeRefused(t *testing.T) {
	if _, err := sqlite.Open(context.Background(), t.TempDir()+"/of.db", sqlite.WithCommitLinger(-time.Millisecond)); err == nil {
		t.Fatal("negative linger accepted")
	}
}
