package locktest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Unreachable ends a test whose real dependency (Redis, PostgreSQL, etcd) is
// not there: it skips loudly on a laptop and fails when CI=true, where every
// service must run.
func Unreachable(tb testing.TB, service string, err error) {
	tb.Helper()
	msg := fmt.Sprintf("%s is unreachable (%v): start it with scripts/services.sh", service, err)
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip("SKIPPED, NOT TESTED: " + msg)
}

// PostgresURL is the database the fenced resource lives in:
// $ORDERFLOW_TEST_POSTGRES, or the local test database.
func PostgresURL() string {
	if u := os.Getenv("ORDERFLOW_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// Fence is a tiny fenced resource: a PostgreSQL table whose rows only accept
// a write carrying a token larger than the last one written. It is what every
// store that is written under a lock must do, in the smallest form that shows
// it (docs/locks.md).
type Fence struct {
	mu      sync.Mutex // a pgx.Conn serves one query at a time
	conn    *pgx.Conn
	written map[string]bool // rows to delete when the test ends
	keep    bool            // the frozen helper leaves the rows to its parent
}

const fenceDDL = `CREATE TABLE IF NOT EXISTS locktest_fenced (
	key   text PRIMARY KEY,
	token bigint NOT NULL,
	value text NOT NULL
)`

// OpenFence connects to PostgreSQL (or skips, see Unreachable) and makes sure
// the table exists. The connection is closed when the test ends.
func OpenFence(tb testing.TB) *Fence {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, PostgresURL())
	if err != nil {
		Unreachable(tb, "PostgreSQL", err)
	}
	f := &Fence{conn: conn, written: make(map[string]bool)}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.mu.Lock()
		defer f.mu.Unlock()
		for key := range f.written {
			if !f.keep {
				_, _ = conn.Exec(ctx, `DELETE FROM locktest_fenced WHERE key = $1`, key)
			}
		}
		_ = conn.Close(ctx)
	})
	// Several test binaries create the table at once; CREATE TABLE IF NOT
	// EXISTS is not safe against that in PostgreSQL, an advisory lock is.
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7106001)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, fenceDDL)
		return err
	})
	if err != nil {
		tb.Fatalf("creating the fenced table: %v", err)
	}
	return f
}

// Write stores value under key if token is larger than the token of the last
// accepted write, and reports whether it did. The comparison happens inside
// the one UPDATE, so two writers cannot both pass it.
func (f *Fence) Write(ctx context.Context, key string, token uint64, value string) (bool, error) {
	if token > 1<<63-1 {
		return false, errors.New("fence: token does not fit a bigint")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written[key] = true
	tag, err := f.conn.Exec(ctx, `
		INSERT INTO locktest_fenced (key, token, value) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET token = EXCLUDED.token, value = EXCLUDED.value
		WHERE locktest_fenced.token < EXCLUDED.token`, key, int64(token), value)
	if err != nil {
		return false, fmt.Errorf("fence: write %q: %w", key, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Read returns the last accepted write under key.
func (f *Fence) Read(ctx context.Context, key string) (token uint64, value string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var t int64
	err = f.conn.QueryRow(ctx, `SELECT token, value FROM locktest_fenced WHERE key = $1`, key).Scan(&t, &value)
	if err != nil {
		return 0, "", fmt.Errorf("fence: read %q: %w", key, err)
	}
	return uint64(t), value, nil
}
