package sqlbus

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// pruneChunk is how many outbox rows one prune write deletes: small enough
// that the orders queued behind it in the group commit barely notice.
const pruneChunk = 2000

// Prune deletes the outbox rows that every known consumer group has
// acknowledged (at or below the lowest cursor) and that were created more
// than retention ago, and returns how many. A group is known once it has
// consumed; with no group known nothing is pruned, since the first consumer
// of a new deployment must still find every event. A group that is gone for
// good keeps its cursor, and so the outbox, until its bus_cursors row is
// deleted. Dead letters keep their own copy of the event, so pruning never
// loses one. The rows go in chunks, one write each.
func (b *Bus) Prune(ctx context.Context, retention time.Duration) (int64, error) {
	if err := b.ensureSchema(ctx); err != nil {
		return 0, err
	}
	before := time.Now().Add(-retention).UnixNano()
	var total int64
	for {
		var n int64
		err := b.st.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq IN (
				SELECT seq FROM outbox
				WHERE seq <= (SELECT min(seq) FROM bus_cursors) AND created_at < ?
				ORDER BY seq LIMIT ?)`, before, pruneChunk)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("sqlbus: prune outbox: %w", err)
		}
		total += n
		if n < pruneChunk {
			return total, nil
		}
	}
}

// RunPruner calls Prune(ctx, retention) every interval until ctx ends, and
// returns nil then. Failures are logged and retried at the next tick.
func (b *Bus) RunPruner(ctx context.Context, interval, retention time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if n, err := b.Prune(ctx, retention); err != nil && ctx.Err() == nil {
			b.cfg.Logger.Warn("sqlbus: prune failed; retrying at the next tick", "err", err)
		} else if n > 0 {
			b.cfg.Logger.Debug("sqlbus: pruned outbox", "rows", n)
		}
	}
}
