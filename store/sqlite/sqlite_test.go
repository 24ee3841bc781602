package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/store/sqlite"
	"github.com/orderflow/orderflow/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// MustOpen opens a store in a fresh temporary directory, closed at cleanup.
func MustOpen(tb testing.TB, opts ...sqlite.Option) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "db", "orderflow.db"), opts...)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) orderflow.OrderStore { return MustOpen(t) })
}

// TestDurabilitySettings checks the settings every acknowledged write relies
// on, on the write connection itself and on the read pool.
func TestDurabilitySettings(t *testing.T) {
	s := MustOpen(t)
	want := map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1"}
	read := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) map[string]string {
		got := map[string]string{}
		for p := range want {
			var v string
			if err := q.QueryRowContext(context.Background(), "PRAGMA "+p).Scan(&v); err != nil {
				t.Fatalf("PRAGMA %s: %v", p, err)
			}
			got[p] = strings.ToLower(v)
		}
		return got
	}
	var writer map[string]string
	if err := s.Write(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
		writer = read(tx)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]map[string]string{"writer": writer, "reader": read(s.ReadDB())} {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s connection: %v, want %v", name, got, want)
		}
	}
	if _, err := s.ReadDB().Exec(`DELETE FROM orders`); err == nil {
		t.Error("a write through ReadDB succeeded; the read pool must be query-only")
	}
}

func TestGroupCommit(t *testing.T) {
	s := MustOpen(t)
	ctx := context.Background()
	const writers, each = 64, 4
	before := s.Stats()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			for j := range each {
				// The callback path of one order: create, record, apply.
				id := fmt.Sprintf("ord_%d_%d", i, j)
				if _, _, err := s.CreateOrder(ctx, storetest.NewOrder(id, "u_1", time.Now()), storetest.NewEvent(id), nil); err != nil {
					errs <- err
					return
				}
				c := storetest.NewCallback(id, orderflow.EventRiskDecided, orderflow.DecisionApprove, 0.1, "v3")
				if _, err := s.RecordCallback(ctx, c); err != nil {
					errs <- err
					return
				}
				if _, err := s.ApplyCallbacks(ctx, id); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	writes, commits, largest := writesDone(t, &wg, errs, s, before)
	t.Logf("%d concurrent writers: %d writes, %d commits, %.3f commits/write, largest batch %d",
		writers, writes, commits, float64(commits)/float64(writes), largest)
	if commits >= writes {
		t.Fatalf("%d commits for %d writes: writes do not share commits", commits, writes)
	}
}

// writesDone waits for the writers in wg, fails t on the first error they
// sent on errs, and returns the writes and commits s counted since before,
// and the largest batch it committed.
func writesDone(t *testing.T, wg *sync.WaitGroup, errs chan error, s *sqlite.Store, before sqlite.WriteStats) (writes, commits uint64, largest int) {
	t.Helper()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	after := s.Stats()
	return after.Writes - before.Writes, after.Commits - before.Commits, after.MaxBatch
}

// blockingStore returns a store whose writer stops before each commit until
// released, and a channel that says when it has stopped.
func blockingStore(t *testing.T, opts ...sqlite.Option) (s *sqlite.Store, entered <-chan struct{}, release func()) {
	in := make(chan struct{}, 100)
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	opts = append(opts, sqlite.WithBeforeCommit(func() {
		in <- struct{}{}
		<-gate
	}))
	s = MustOpen(t, opts...)
	t.Cleanup(release) // registered after MustOpen's Close, so it runs first
	return s, in, release
}

func noop(context.Context, *sql.Tx) error { return nil }

func TestQueueFullIsResourceExhausted(t *testing.T) {
	s, entered, release := blockingStore(t, sqlite.WithQueueSize(2), sqlite.WithMaxBatch(1))
	ctx := context.Background()
	results := make(chan error, 3)
	go func() { results <- s.Write(ctx, noop) }()
	<-entered // the writer holds the first write; the queue is empty
	for range 2 {
		go func() { results <- s.Write(ctx, noop) }()
	}
	waitFor(t, func() bool { return s.Stats().Queued == 2 })
	ran := false
	err := s.Write(ctx, func(context.Context, *sql.Tx) error { ran = true; return nil })
	if orderflow.ErrorCode(err) != orderflow.EResourceExhausted {
		t.Fatalf("Write on a full queue = %v, want resource_exhausted", err)
	}
	if got := s.Stats().Rejected; got != 1 {
		t.Fatalf("Rejected = %d, want 1", got)
	}
	release()
	for range 3 {
		if err := <-results; err != nil {
			t.Fatalf("queued write: %v", err)
		}
	}
	if ran {
		t.Fatal("the rejected write ran")
	}
}

func TestDeadlineWhileQueuedStillCommits(t *testing.T) {
	s, entered, release := blockingStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	o := storetest.NewOrder("ord_1", "u_1", time.Now())
	_, _, err := s.CreateOrder(ctx, o, storetest.NewEvent("ord_1"), nil)
	if orderflow.ErrorCode(err) != orderflow.EDeadlineExceeded || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CreateOrder past its deadline = %v, want deadline_exceeded wrapping context.DeadlineExceeded", err)
	}
	<-entered
	release()
	waitFor(t, func() bool { _, err := s.Order(context.Background(), "ord_1"); return err == nil })

	// A context already done queues nothing.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if err := s.Write(done, func(context.Context, *sql.Tx) error { t.Error("ran"); return nil }); orderflow.ErrorCode(err) != orderflow.EDeadlineExceeded {
		t.Fatalf("Write with a done context = %v", err)
	}
}

// TestWriteIsolatesFailures: a failing or panicking write in a batch rolls
// back only its own changes.
func TestWriteIsolatesFailures(t *testing.T) {
	s, entered, release := blockingStore(t)
	ctx := context.Background()
	go func() { _ = s.Write(ctx, noop) }()
	<-entered
	insert := func(id string, fail, panics bool) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (id, type, order_id, payload, created_at) VALUES (?, 't', 'o', x'', 0)`, id); err != nil {
				return err
			}
			if panics {
				panic("boom")
			}
			if fail {
				return errors.New("refused")
			}
			return nil
		}
	}
	cases := []struct {
		id           string
		fail, panics bool
	}{{"a", false, false}, {"b", true, false}, {"c", false, true}, {"d", false, false}}
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Go(func() { errs[i] = s.Write(ctx, insert(c.id, c.fail, c.panics)) })
	}
	waitFor(t, func() bool { return s.Stats().Queued == len(cases) })
	release()
	wg.Wait()
	for i, c := range cases {
		if (errs[i] != nil) != (c.fail || c.panics) {
			t.Errorf("write %s: err %v", c.id, errs[i])
		}
		var n int
		if err := s.ReadDB().QueryRow(`SELECT count(*) FROM outbox WHERE id = ?`, c.id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 0, false: 1}[c.fail || c.panics]; n != want {
			t.Errorf("write %s: %d rows, want %d", c.id, n, want)
		}
	}
	if st := s.Stats(); st.MaxBatch < len(cases) {
		t.Errorf("largest batch %d, want the %d queued writes in one", st.MaxBatch, len(cases))
	}
}

func TestCloseDrainsQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orderflow.db")
	in := make(chan struct{}, 100)
	gate := make(chan struct{})
	s, err := sqlite.Open(context.Background(), path, sqlite.WithBeforeCommit(func() { in <- struct{}{}; <-gate }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("ord_%d", i)
			_, _, errs[i] = s.CreateOrder(ctx, storetest.NewOrder(id, "u_1", time.Now()), storetest.NewEvent(id), nil)
		})
	}
	<-in
	// Every write is either in the held batch or queued: Close must drain them.
	waitFor(t, func() bool { st := s.Stats(); return int(st.Writes)+st.Queued == n })
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	waitFor(t, func() bool { return s.Ping(ctx) != nil }) // Close has begun
	if err := s.Write(ctx, noop); orderflow.ErrorCode(err) != orderflow.EUnavailable {
		t.Fatalf("Write after Close began = %v, want unavailable", err)
	}
	close(gate)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("write %d queued before Close: %v", i, err)
		}
	}
	if info, err := os.Stat(path + "-wal"); err == nil && info.Size() > 0 {
		t.Errorf("WAL holds %d bytes after Close, want it checkpointed", info.Size())
	}
	s2, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	os, err := s2.Orders(ctx, orderflow.OrderFilter{Limit: 100})
	if err != nil || len(os) != n {
		t.Fatalf("after reopen: %d orders, err %v; want %d", len(os), err, n)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("not a database, not at all, not even close to one......................................................"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path string }{
		{"ParentIsAFile", filepath.Join(file, "orderflow.db")},
		{"PathIsADirectory", dir},
		{"NotADatabase", file},
		{"Memory", ":memory:"},
		{"Empty", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlite.Open(context.Background(), tc.path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", tc.path)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\n\r") || !strings.Contains(msg, "sqlite") {
				t.Fatalf("error %q: want one line naming the store", msg)
			}
			t.Log(err)
		})
	}
}

func TestMigrateIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "orderflow.db")
	ctx := context.Background()
	for range 2 {
		if err := sqlite.Migrate(ctx, path); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.ReadDB().QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("schema_migrations has %d rows (err %v), want 1", n, err)
	}
}

func TestNowIsTheStoreClock(t *testing.T) {
	s := MustOpen(t)
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("X", -3600))
	s.Now = func() time.Time { return at }
	ctx := context.Background()
	o := storetest.NewOrder("ord_1", "u_1", time.Time{})
	o.UpdatedAt = time.Time{}
	got, _, err := s.CreateOrder(ctx, o, storetest.NewEvent("ord_1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(at) || got.CreatedAt.Location() != time.UTC || !got.UpdatedAt.Equal(at) {
		t.Fatalf("created %v updated %v, want %v in UTC", got.CreatedAt, got.UpdatedAt, at)
	}
	cancelled, err := s.Transition(ctx, "ord_1", orderflow.ActionCancel)
	if err != nil || !cancelled.UpdatedAt.Equal(at) {
		t.Fatalf("Transition: %+v, %v; want updated at %v", cancelled, err, at)
	}
}

func TestTransitionRefusesRiskActions(t *testing.T) {
	s := MustOpen(t)
	storetestCreate(t, s, "ord_1")
	_, err := s.Transition(context.Background(), "ord_1", orderflow.ActionApprove)
	if orderflow.ErrorCode(err) != orderflow.EInvalid {
		t.Fatalf("Transition(approve) = %v, want invalid_argument", err)
	}
}

func storetestCreate(t *testing.T, s *sqlite.Store, id string) {
	t.Helper()
	if _, _, err := s.CreateOrder(context.Background(), storetest.NewOrder(id, "u_1", time.Now()), storetest.NewEvent(id), nil); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond: the tests wait on the writer's state, which only the
// writer goroutine changes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestOpenOddFileNames: the path is a file name, never parsed as URI
// parameters, whatever characters it holds.
func TestOpenOddFileNames(t *testing.T) {
	for _, name := range []string{"with space.db", "q?mode=memory.db", "hash#frag.db", "pct%20.db", "日本.db"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			s, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatalf("Open(%q): %v", path, err)
			}
			storetestCreate(t, s, "ord_1")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("no file at %q: %v", path, err)
			}
		})
	}
}

// TestBrokenTransactionAbortsBatch: a write that ends the shared transaction
// itself (a bug) fails its whole batch with a known outcome, nothing written,
// and the writer goes on with the next batch.
func TestBrokenTransactionAbortsBatch(t *testing.T) {
	s, entered, release := blockingStore(t)
	ctx := context.Background()
	go func() { _ = s.Write(ctx, noop) }()
	<-entered
	var wg sync.WaitGroup
	var good, rogue error
	wg.Go(func() {
		good = s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO outbox (id, type, order_id, payload, created_at) VALUES ('good', 't', 'o', x'', 0)`)
			return err
		})
	})
	waitFor(t, func() bool { return s.Stats().Queued == 1 })
	wg.Go(func() {
		rogue = s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `ROLLBACK`)
			return err
		})
	})
	waitFor(t, func() bool { return s.Stats().Queued == 2 })
	release()
	wg.Wait()
	if orderflow.ErrorCode(good) != orderflow.EInternal || !strings.Contains(good.Error(), "nothing was written") {
		t.Fatalf("write batched with a rogue one = %v, want internal, nothing written", good)
	}
	if rogue == nil {
		t.Fatal("the rogue write succeeded")
	}
	var n int
	if err := s.ReadDB().QueryRow(`SELECT count(*) FROM outbox WHERE id = 'good'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows (err %v) of an aborted batch, want 0", n, err)
	}
	storetestCreate(t, s, "ord_after")
	if st := s.Stats(); st.CommitErrors != 1 {
		t.Fatalf("CommitErrors = %d, want 1", st.CommitErrors)
	}
}
