package sqlbus

import (
	"context"
	"database/sql"
	"fmt"
)

// schema is the bus's state, kept in the order store's file so its writes
// share the store's group commit. The bus owns these tables and creates
// them itself (idempotently, through Store.Write) before its first use: the
// store's migrations are the order service's schema, and the outbox is the
// only table the two share. Times are unix nanoseconds in UTC, like the
// store's.
const schema = `
-- bus_cursors: per consumer group, the outbox seq up to which every event is
-- acknowledged (or dead-lettered). Everything above it is delivered again
-- after a restart, except what bus_deliveries marks acked.
CREATE TABLE IF NOT EXISTS bus_cursors (
    grp        TEXT    NOT NULL PRIMARY KEY,
    seq        INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- bus_deliveries: what a group knows about events above its cursor: how many
-- deliveries failed (attempts) and whether the event was acknowledged out of
-- order (acked). Rows at or below the cursor are deleted as it advances, so
-- the table stays as small as the window of events in flight.
CREATE TABLE IF NOT EXISTS bus_deliveries (
    grp      TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    acked    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (grp, seq)
) STRICT, WITHOUT ROWID;

-- bus_dead_letters: events a group gave up on, with a copy of the event so
-- pruning the outbox never loses one, the attempts made and the last error.
CREATE TABLE IF NOT EXISTS bus_dead_letters (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    grp        TEXT    NOT NULL,
    seq        INTEGER NOT NULL, -- the event's outbox seq
    event_id   TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    order_id   TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    headers    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL,
    last_error TEXT    NOT NULL,
    at         INTEGER NOT NULL
) STRICT;

-- bus_redrive: dead letters an operator sent back, delivered to their group
-- only (the outbox row, if still there, belongs to every group). A row is
-- deleted when its delivery is acknowledged or dead-lettered again.
CREATE TABLE IF NOT EXISTS bus_redrive (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    grp        TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    event_id   TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    order_id   TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    headers    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX IF NOT EXISTS bus_redrive_by_group ON bus_redrive (grp, id);
`

// ensureSchema creates the bus's tables once per Bus. A failure is returned
// and retried by the next caller.
func (b *Bus) ensureSchema(ctx context.Context) error {
	b.schemaMu.Lock()
	defer b.schemaMu.Unlock()
	if b.schemaDone {
		return nil
	}
	err := b.st.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, schema)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlbus: create tables: %w", err)
	}
	b.schemaDone = true
	return nil
}
