// Package postgres is the distributed order store: orders, their outbox, the
// callback inbox, idempotency keys and the risk engine's decisions in
// PostgreSQL, through pgx's connection pool. Any number of order and risk
// replicas share one database.
//
// It keeps the same contract as store/sqlite (store/storetest runs against
// both) and uses only SQL that Postgres-compatible distributed engines
// (CockroachDB, YugabyteDB) accept as well: plain INSERT … ON CONFLICT,
// SELECT … FOR UPDATE, no LISTEN/NOTIFY, no triggers, no advisory locks.
//
// Every exported method is one transaction. Serialization failures and
// deadlocks (SQLSTATE 40001, 40P01), which a distributed engine returns far
// more often than PostgreSQL does, are retried a bounded number of times
// with jittered back-off; anything else is returned as a coded
// *orderflow.Error.
//
// Times are BIGINT unix nanoseconds: timestamptz keeps microseconds only.
//
// The outbox's seq comes from a sequence, so concurrent transactions may
// commit out of seq order. The relay therefore reads what is unpublished
// (UnpublishedEvents) rather than what lies past a cursor, and marks what it
// copied (MarkPublished) under its lock's fencing token.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow"
)

var (
	_ orderflow.OrderStore    = (*Store)(nil)
	_ orderflow.DecisionStore = (*Store)(nil)
)

// Retry bounds for transactions that fail with a serialization failure or a
// deadlock: the transaction rolled back entirely, so running it again is
// safe. A few attempts absorb ordinary contention; more would hide a hot row
// that needs a design change.
const (
	maxAttempts  = 6
	retryBase    = 2 * time.Millisecond
	retryCeiling = 100 * time.Millisecond
)

// Store is an orderflow.OrderStore and orderflow.DecisionStore in
// PostgreSQL. It is safe for concurrent use by many goroutines and many
// processes. Set Now, if at all, before the first call.
type Store struct {
	// Now is the store's clock for received, applied, published, transition
	// and expiry times. Replace it in tests; times are stored in UTC with
	// nanoseconds.
	Now func() time.Time

	pool   *pgxpool.Pool
	closed atomic.Bool

	retries atomic.Uint64
}

// Open connects to the database at url (a postgres:// URL or key=value
// string, as pgx accepts it, pool settings such as pool_max_conns
// included), applies the embedded migrations and returns the store. Several
// replicas may open the same database at once: migrations serialize on a
// lock row, and each step is applied once. Close releases the pool.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", redactErr(err))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", redact(cfg), err)
	}
	if err := migrate(ctx, pool, time.Now); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", redact(cfg), err)
	}
	return &Store{Now: time.Now, pool: pool}, nil
}

// Pool returns the store's connection pool, for sibling adapters that keep
// tables in the same database. Each of their writes should be one
// transaction too.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Retries returns how many transactions were run again after a
// serialization failure or deadlock since Open: a measure of contention.
func (s *Store) Retries() uint64 { return s.retries.Load() }

// Ping checks that the store is open and the database answers (readiness).
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return orderflow.Errorf(orderflow.EUnavailable, "store is closed")
	}
	if err := s.pool.Ping(ctx); err != nil {
		return dbErr(ctx, err, "ping")
	}
	return nil
}

// Close waits for the connections in use to be returned and closes the
// pool. Every write that returned is already committed: the store buffers
// nothing. Later calls do nothing.
func (s *Store) Close() error {
	if s.closed.CompareAndSwap(false, true) {
		s.pool.Close()
	}
	return nil
}

// txMode says how inTx runs a transaction.
type txMode int

const (
	readWrite txMode = iota
	// readOnlySnapshot reads several statements from one snapshot.
	readOnlySnapshot
)

// inTx runs fn in one transaction and commits it, running it again from the
// start when the database reports a serialization failure or a deadlock
// (the transaction was rolled back entirely, so that is safe). fn must not
// keep state across attempts other than what it rebuilds each time.
//
// A failed COMMIT that is not one of those is an unknown outcome: the
// transaction may or may not have committed, and the error says so.
func (s *Store) inTx(ctx context.Context, mode txMode, what string, fn func(tx pgx.Tx) error) error {
	if s.closed.Load() {
		return orderflow.Errorf(orderflow.EUnavailable, "store is closed")
	}
	opts := pgx.TxOptions{}
	if mode == readOnlySnapshot {
		opts = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	}
	for attempt := 1; ; attempt++ {
		err := s.attempt(ctx, opts, fn)
		if err == nil || !retryable(err) || attempt == maxAttempts {
			if err != nil && retryable(err) {
				return orderflow.Wrap(orderflow.EUnavailable, err, "%s: still contended after %d attempts", what, attempt)
			}
			return dbErr(ctx, err, what)
		}
		s.retries.Add(1)
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return dbErr(ctx, err, what)
		}
	}
}

// attempt is one run of inTx's transaction.
func (s *Store) attempt(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op; before, fn's error is what counts
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		if retryable(err) { // the engine says it rolled back
			return err
		}
		if ctx.Err() != nil {
			return orderflow.Wrap(orderflow.EDeadlineExceeded, err, "commit interrupted by the deadline: outcome unknown, the write may or may not be stored")
		}
		return orderflow.Wrap(orderflow.EInternal, err, "commit failed: outcome unknown, the write may or may not be stored")
	}
	return nil
}

// errRetry asks inTx to run the transaction again: a concurrent transaction
// committed the row this one was about to insert, and a new attempt sees it.
var errRetry = errors.New("postgres: lost an insert race; retry")

// retryable reports whether the transaction failed as a whole in a way that
// running it again can fix.
func retryable(err error) bool {
	if errors.Is(err, errRetry) {
		return true
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// backoff is full jitter over an exponentially growing ceiling, so replicas
// that collided once do not collide again in lockstep.
func backoff(attempt int) time.Duration {
	ceiling := retryBase << (attempt - 1)
	if ceiling > retryCeiling || ceiling <= 0 {
		ceiling = retryCeiling
	}
	return time.Duration(rand.Int64N(int64(ceiling)) + 1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PostgreSQL error codes the store acts on.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// dbErr turns a failure into a coded error: a coded one stays as it is, the
// caller's deadline is deadline_exceeded, a database that cannot be reached
// unavailable, anything else internal.
func dbErr(ctx context.Context, err error, what string) error {
	if err == nil {
		return nil
	}
	var e *orderflow.Error
	if errors.As(err, &e) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return orderflow.Wrap(orderflow.EDeadlineExceeded, err, "%s: deadline exceeded", what)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return orderflow.Wrap(orderflow.EUnavailable, err, "%s: database unreachable", what)
	}
	return orderflow.Wrap(orderflow.EInternal, err, "postgres: %s", what)
}

// redact names the database of cfg without its password, for errors that
// reach logs.
func redact(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// redactErr drops the text of a URL parse error, which may quote the URL
// with its password.
func redactErr(err error) error {
	if strings.Contains(err.Error(), "://") {
		return errors.New("cannot parse the connection string (not shown: it may hold a password)")
	}
	return err
}
