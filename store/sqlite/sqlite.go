// Package sqlite is the embedded order store: orders, their outbox, the
// callback inbox and idempotency keys in one SQLite file, through the pure Go
// driver modernc.org/sqlite.
//
// Durability: the file is in WAL mode with synchronous=FULL, so a write is
// fsynced before it is acknowledged and survives kill -9 and power loss.
// Throughput: every write goes through one writer goroutine that owns the only
// write connection and commits whatever is queued as one transaction (group
// commit), each caller's write inside its own SAVEPOINT. Under load many
// writes share one fsync; Stats reports how many.
//
// Sibling adapters that keep their tables in the same file (the SQL bus, the
// risk engine's decision store) write through Store.Write and read through
// Store.ReadDB, so they share the committer instead of fighting it for the
// write lock.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

var _ orderflow.OrderStore = (*Store)(nil)

// Defaults, each changed by an Option.
const (
	// DefaultQueueSize bounds the writes waiting for the writer. It is several
	// batches deep so a burst from every handler fits, yet short enough that a
	// full queue means the disk is behind and the caller should back off.
	DefaultQueueSize = 1024
	// DefaultMaxBatch caps the writes in one commit, so one fsync never waits
	// behind an unbounded transaction.
	DefaultMaxBatch = 256
	// DefaultReadConns is the size of the read pool. WAL readers never block
	// the writer nor each other; a few suffice on a small machine.
	DefaultReadConns = 4

	defaultBusyTimeout = 5 * time.Second
)

// Store is an orderflow.OrderStore in one SQLite file. It is safe for
// concurrent use. Set Now, if at all, before the first call.
type Store struct {
	// Now is the store's clock for received, applied, transition and expiry
	// times. Replace it in tests; times are stored in UTC with nanoseconds.
	Now func() time.Time

	path   string
	readDB *sql.DB
	rstmts stmts
	// writeDB holds exactly one connection, used by the writer goroutine
	// alone, so it is the write lock of the process.
	writeDB *sql.DB
	wstmts  stmts
	// batchTx is the writer's open transaction and batchStmts the
	// statements bound to it so far; only the writer goroutine uses them.
	batchTx    *sql.Tx
	batchStmts stmts

	queue        chan *op
	maxBatch     int
	linger       time.Duration
	beforeCommit func()

	mu      sync.RWMutex // guards closed against enqueues racing Close
	closed  bool
	quit    chan struct{}
	stopped chan struct{}

	closeOnce sync.Once
	closeErr  error

	// dec holds the decision store's prepared statements once its tables
	// exist (decisionStmts); decMu serializes preparing them.
	decMu sync.Mutex
	dec   atomic.Pointer[decStmts]

	writes, commits, failed, rejected, commitErrors atomic.Uint64
	maxSeen                                         atomic.Int64
}

// Option changes how Open builds a Store.
type Option func(*config)

type config struct {
	queueSize    int
	maxBatch     int
	readConns    int
	busyTimeout  time.Duration
	linger       time.Duration
	beforeCommit func()
}

// WithQueueSize bounds the queue of writes waiting for the writer; a write
// that finds it full fails at once with resource_exhausted.
func WithQueueSize(n int) Option { return func(c *config) { c.queueSize = n } }

// WithMaxBatch caps how many queued writes share one commit.
func WithMaxBatch(n int) Option { return func(c *config) { c.maxBatch = n } }

// WithCommitLinger lets a commit wait up to d for more writes to join it,
// but only while writes arrive concurrently (the previous commit carried
// more than one) and its batch is still small (under a quarter of the max
// batch): under load, fewer and fuller commits cost the writer less CPU per
// write (each commit writes the WAL frames of its pages and fsyncs), for at
// most d more latency per write; a lone write is never delayed, and a
// backlog is not slowed down. Zero (the default) commits as soon as the
// writer is free.
func WithCommitLinger(d time.Duration) Option { return func(c *config) { c.linger = d } }

// WithReadConns sizes the pool of read connections.
func WithReadConns(n int) Option { return func(c *config) { c.readConns = n } }

// WithBusyTimeout sets how long a connection waits for a lock another process
// holds (another `orderflow migrate`, a backup) before failing.
func WithBusyTimeout(d time.Duration) Option { return func(c *config) { c.busyTimeout = d } }

// WithBeforeCommit calls f in the writer goroutine just before every COMMIT.
// It exists for tests that need a deliberately slow or paused store (the
// service's back-pressure test); production code leaves it unset.
func WithBeforeCommit(f func()) Option { return func(c *config) { c.beforeCommit = f } }

// WithCommitDelay makes every commit take at least d longer: a slow disk on
// demand, for tests and demonstrations of back-pressure.
func WithCommitDelay(d time.Duration) Option {
	return WithBeforeCommit(func() { time.Sleep(d) })
}

// Open opens (creating it and its parent directories when missing) the
// database file at path, applies the embedded migrations and starts the
// writer. Close stops it. A path that cannot be opened fails with a one-line
// error naming it.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	cfg := config{
		queueSize:   DefaultQueueSize,
		maxBatch:    DefaultMaxBatch,
		readConns:   DefaultReadConns,
		busyTimeout: defaultBusyTimeout,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.queueSize < 1 || cfg.maxBatch < 1 || cfg.readConns < 1 {
		return nil, fmt.Errorf("sqlite: queue size, max batch and read conns must be >= 1")
	}
	if cfg.linger < 0 {
		return nil, fmt.Errorf("sqlite: commit linger must not be negative")
	}
	wdb, err := openWriteDB(path, cfg.busyTimeout)
	if err != nil {
		return nil, err
	}
	fail := func(err error, closers ...func()) (*Store, error) {
		for _, c := range closers {
			c()
		}
		wdb.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, oneLine(err))
	}
	conn, err := wdb.Conn(ctx)
	if err != nil {
		return fail(err)
	}
	err = migrate(ctx, conn, time.Now)
	conn.Close() // back to the pool, where the writer will take it
	if err != nil {
		wdb.Close()
		return nil, err
	}
	wstmts, err := prepare(ctx, wdb, writeQueries)
	if err != nil {
		return fail(err)
	}
	rdb, err := sql.Open("sqlite", dsn(path, cfg.busyTimeout, true))
	if err != nil {
		return fail(err, wstmts.close)
	}
	rdb.SetMaxOpenConns(cfg.readConns)
	rdb.SetMaxIdleConns(cfg.readConns)
	rstmts, err := prepare(ctx, rdb, readQueries)
	if err != nil {
		return fail(err, wstmts.close, func() { rdb.Close() })
	}
	s := &Store{
		Now:          time.Now,
		path:         path,
		readDB:       rdb,
		rstmts:       rstmts,
		writeDB:      wdb,
		wstmts:       wstmts,
		batchStmts:   stmts{},
		queue:        make(chan *op, cfg.queueSize),
		maxBatch:     cfg.maxBatch,
		linger:       cfg.linger,
		beforeCommit: cfg.beforeCommit,
		quit:         make(chan struct{}),
		stopped:      make(chan struct{}),
	}
	go s.run()
	return s, nil
}

// openWriteDB creates path's directory and opens a pool of exactly one
// read-write connection to it, checking that the file really opens (sql.Open
// alone connects lazily).
func openWriteDB(path string, busy time.Duration) (*sql.DB, error) {
	if path == "" || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open %q: need a file path (no :memory:, no file: URI)", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, oneLine(err))
	}
	db, err := sql.Open("sqlite", dsn(path, busy, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, oneLine(err))
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, oneLine(err))
	}
	return db, nil
}

// dsn builds the driver's connection string. The path travels as a file: URI
// so that '?' or '#' in a file name cannot be mistaken for parameters.
//
// Every connection gets: WAL, so readers never block the writer and a commit
// is one append plus one fsync of the log; synchronous=FULL, so that fsync
// happens before COMMIT returns (NORMAL would risk the last commits on power
// loss); a busy timeout for locks held by other processes; foreign keys.
// The writer begins IMMEDIATE transactions, taking the write lock up front
// instead of failing to upgrade a read lock halfway; readers are query_only,
// so nothing can write around the committer.
func dsn(path string, busy time.Duration, readOnly bool) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(busy.Milliseconds(), 10))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_foreign_keys", "1")
	// Each write runs in a SAVEPOINT of the shared transaction, and SQLite
	// keeps a savepoint's undo pages in a statement journal that spills to a
	// temporary file past 64 KiB: with a few hundred writes per commit, that
	// was a pwrite syscall per page changed. In memory it stays a copy.
	q.Add("_pragma", "temp_store=MEMORY")
	if readOnly {
		q.Set("_query_only", "1")
	} else {
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String()
}

// ReadDB returns the pool of read-only connections, for sibling adapters that
// keep tables in the same file. Writes through it fail: use Write.
func (s *Store) ReadDB() *sql.DB { return s.readDB }

// Path returns the database file's path as given to Open.
func (s *Store) Path() string { return s.path }

// Ping checks that the store is open and a read connection answers.
func (s *Store) Ping(ctx context.Context) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return orderflow.Errorf(orderflow.EUnavailable, "store is closed")
	}
	var one int
	if err := s.readDB.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return dbErr(ctx, err, "ping")
	}
	return nil
}

// Close stops accepting writes, commits everything already queued (each
// waiting caller gets its result), stops the writer, checkpoints the WAL into
// the main file and closes every connection. Later calls return the first
// call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.quit)
		<-s.stopped
		var errs []error
		s.rstmts.close()
		s.wstmts.close()
		s.decMu.Lock() // a decisionStmts in progress finishes first, and none starts after
		if ds := s.dec.Load(); ds != nil {
			ds.insert.Close()
		}
		s.decMu.Unlock()
		errs = append(errs, s.readDB.Close())
		// TRUNCATE leaves an empty WAL behind: the next Open starts clean and
		// a copy of the main file alone is a complete backup.
		if _, err := s.writeDB.ExecContext(context.Background(), `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			errs = append(errs, fmt.Errorf("checkpoint: %w", err))
		}
		errs = append(errs, s.writeDB.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("sqlite: close %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// oneLine flattens a driver error onto one line, so a failed start prints one
// line of reason. The cause stays reachable through errors.Is and errors.As.
func oneLine(err error) error {
	if err == nil || !strings.ContainsAny(err.Error(), "\r\n") {
		return err
	}
	return flatErr{err}
}

type flatErr struct{ err error }

func (e flatErr) Error() string { return strings.Join(strings.Fields(e.err.Error()), " ") }
func (e flatErr) Unwrap() error { return e.err }

// dbErr turns a failed read into a coded error: the caller's deadline is
// deadline_exceeded, anything else internal.
func dbErr(ctx context.Context, err error, what string) error {
	if ctxErr := ctx.Err(); ctxErr != nil && (errors.Is(err, ctxErr) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return orderflow.Wrap(orderflow.EDeadlineExceeded, err, "%s: deadline exceeded", what)
	}
	var e *orderflow.Error
	if errors.As(err, &e) {
		return err
	}
	return orderflow.Wrap(orderflow.EInternal, err, "sqlite: %s", what)
}
