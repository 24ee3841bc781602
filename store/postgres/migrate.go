package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFS holds the schema, one file per step, named NNNN_what.sql. Steps
// are applied in order of NNNN and never edited once released: a change is a
// new file.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one embedded schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded steps sorted by version.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, n := range names {
		base := path.Base(n)
		prefix, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", base)
		}
		b, err := migrationFS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

// Migrate brings the database at url up to the embedded schema and
// disconnects. It is idempotent: applied steps are recorded in
// schema_migrations and skipped. `orderflow migrate` calls it; Open applies
// the same steps itself.
func Migrate(ctx context.Context, url string) error {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("postgres: parse url: %w", redactErr(err))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres: migrate %s: %w", redact(cfg), err)
	}
	defer pool.Close()
	if err := migrate(ctx, pool, time.Now); err != nil {
		return fmt.Errorf("postgres: migrate %s: %w", redact(cfg), err)
	}
	return nil
}

// The bookkeeping tables. schema_migrations_lock holds one row that every
// migrating process locks with SELECT … FOR UPDATE before it looks at
// schema_migrations: a row lock, which PostgreSQL, CockroachDB and
// YugabyteDB all honour inside a transaction (LOCK TABLE and advisory locks
// are not portable), so replicas starting together apply each step once.
const (
	createMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at BIGINT  NOT NULL
	)`
	createMigrationsLock = `CREATE TABLE IF NOT EXISTS schema_migrations_lock (
		id INTEGER NOT NULL PRIMARY KEY
	)`
	insertLockRow = `INSERT INTO schema_migrations_lock (id) VALUES (1) ON CONFLICT (id) DO NOTHING`
	takeLock      = `SELECT id FROM schema_migrations_lock WHERE id = 1 FOR UPDATE`
)

// migrate applies every step not yet recorded, each in its own transaction
// that first takes the lock row, so concurrent starts serialize and the later
// ones skip what the first applied.
func migrate(ctx context.Context, pool *pgxpool.Pool, now func() time.Time) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if err := bootstrap(ctx, pool); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range ms {
		if err := applyMigration(ctx, pool, m, now); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

// bootstrap creates the bookkeeping tables and the lock row. CREATE TABLE IF
// NOT EXISTS is not safe against a concurrent CREATE of the same table in
// PostgreSQL (the loser fails on the catalog's unique index), so a replica
// that loses that race tries again and then finds the table there.
func bootstrap(ctx context.Context, pool *pgxpool.Pool) error {
	var err error
	for range 5 {
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			for _, q := range []string{createMigrations, createMigrationsLock, insertLockRow} {
				if _, err := tx.Exec(ctx, q); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil || !raceOnCreate(err) {
			return err
		}
		if err := sleep(ctx, backoff(2)); err != nil {
			return err
		}
	}
	return err
}

// raceOnCreate reports whether err is a concurrent CREATE TABLE's loss (or
// an ordinary serialization failure): the other creator won, so a retry
// finds the table. PostgreSQL reports the loss in several ways, depending on
// which catalog row collided first: unique_violation (pg_class's or
// pg_type's index), duplicate_table, or duplicate_object (the table's row
// type, "type … already exists", seen in TestConcurrentMigrate).
func raceOnCreate(err error) bool {
	switch pgCode(err) {
	case codeUniqueViolation, "42P07", "42710":
		return true
	}
	return retryable(err)
}

func applyMigration(ctx context.Context, pool *pgxpool.Pool, m migration, now func() time.Time) error {
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, takeLock); err != nil {
				return fmt.Errorf("take the migrations lock: %w", err)
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, now().UnixNano())
			return err
		})
		if err == nil || !retryable(err) {
			return err
		}
		if serr := sleep(ctx, backoff(attempt)); serr != nil {
			return errors.Join(err, serr)
		}
	}
	return err
}
