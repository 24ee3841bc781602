package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow"
)

// RepublishUndecided puts back on the relay's work list (published_at NULL)
// the order.created events of up to limit orders that are still
// pending_review with no risk.decided callback in the inbox, whose event was
// published before publishedBefore. It returns how many it reset.
//
// It exists for the distributed mode's reconciler: Redis may lose a stream
// (restarted empty, failed over before replication), and then the only copy
// of "this order needs a verdict" is here. Publishing again is harmless: the
// bus drops an event id it already finished, the decision store keeps the
// first verdict, and the inbox answers a repeat as a duplicate. An event the
// outbox already pruned is not restored: keep the outbox retention well
// above the reconciler's timeout.
func (s *Store) RepublishUndecided(ctx context.Context, publishedBefore time.Time, limit int) (int64, error) {
	if limit <= 0 {
		limit = defaultPageSize
	}
	var n int64
	err := s.inTx(ctx, readWrite, "republish undecided", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE outbox SET published_at = NULL
			WHERE seq IN (
				SELECT ob.seq FROM outbox ob
				JOIN orders o ON o.id = ob.order_id
				WHERE ob.type = $1 AND ob.published_at IS NOT NULL AND ob.published_at < $2
				  AND o.status = $3
				  AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.order_id = o.id AND i.event_type = $4)
				ORDER BY ob.seq LIMIT $5)`,
			orderflow.EventOrderCreated, nanos(publishedBefore), string(orderflow.StatusPendingReview),
			string(orderflow.EventRiskDecided), limit)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
