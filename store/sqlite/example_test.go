package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/orderflow/orderflow/store/sqlite"
)

// A sibling adapter keeping its own table in the same file writes through the
// store's committer, so its writes share fsyncs with the orders', and reads
// through the read pool.
func ExampleStore_Write() {
	dir, err := os.MkdirTemp("", "orderflow-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(dir, "orderflow.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	err = s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// Adapters create their tables with their own migrations; this one
		// is kept short.
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS cursors (grp TEXT PRIMARY KEY, seq INTEGER NOT NULL)`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO cursors (grp, seq) VALUES ('risk', 42)
			ON CONFLICT (grp) DO UPDATE SET seq = excluded.seq`)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	// Write returned: the row is committed and fsynced, and readers see it.
	var seq int64
	if err := s.ReadDB().QueryRowContext(ctx, `SELECT seq FROM cursors WHERE grp = 'risk'`).Scan(&seq); err != nil {
		log.Fatal(err)
	}
	fmt.Println("risk cursor at", seq)
	// Output: risk cursor at 42
}
