package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
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

// Migrate brings the database at path up to the embedded schema and closes
// it. It creates the file and its parent directories when missing, and is
// idempotent: applied steps are recorded in schema_migrations and skipped.
// `orderflow migrate` calls it; Open applies the same steps itself.
func Migrate(ctx context.Context, path string) error {
	db, err := openWriteDB(path, defaultBusyTimeout)
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", path, oneLine(err))
	}
	defer conn.Close()
	return migrate(ctx, conn, time.Now)
}

// migrate applies every step not yet recorded, each in its own IMMEDIATE
// transaction, so two processes migrating the same file at once serialize on
// the write lock and the second one skips what the first applied.
func migrate(ctx context.Context, conn *sql.Conn, now func() time.Time) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`
	if _, err := conn.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("sqlite: create schema_migrations: %w", oneLine(err))
	}
	for _, m := range ms {
		if err := applyMigration(ctx, conn, m, now); err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", m.name, oneLine(err))
		}
	}
	return nil
}

func applyMigration(ctx context.Context, conn *sql.Conn, m migration, now func() time.Time) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, now().UnixNano()); err != nil {
		return err
	}
	return tx.Commit()
}
