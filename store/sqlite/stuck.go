package sqlite

import (
	"context"
	"time"

	"github.com/orderflow/orderflow"
)

// Orders waiting for a verdict: pending_review (the risk engine's) or
// in_review (a person's). updated_at is when the order entered that status.
const (
	qStuckOrders = `SELECT ` + orderCols + ` FROM orders
		WHERE status IN ('pending_review', 'in_review') AND updated_at < ?
		ORDER BY updated_at, id LIMIT ?`
	qCountStuck = `SELECT count(*) FROM orders
		WHERE status IN ('pending_review', 'in_review') AND updated_at < ?`
)

// StuckOrders returns up to limit orders that have been waiting for a
// verdict (pending_review or in_review) since before cutoff, longest waiting
// first: an engine that stopped deciding, or a review queue nobody works.
func (s *Store) StuckOrders(ctx context.Context, cutoff time.Time, limit int) ([]*orderflow.Order, error) {
	if limit <= 0 {
		limit = defaultPageSize
	}
	rows, err := s.readDB.QueryContext(ctx, qStuckOrders, nanos(cutoff), limit)
	if err != nil {
		return nil, dbErr(ctx, err, "list stuck orders")
	}
	defer rows.Close()
	out := []*orderflow.Order{}
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, dbErr(ctx, err, "scan stuck order")
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, err, "list stuck orders")
	}
	return out, nil
}

// CountStuck returns how many orders StuckOrders would list without a limit.
func (s *Store) CountStuck(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	if err := s.readDB.QueryRowContext(ctx, qCountStuck, nanos(cutoff)).Scan(&n); err != nil {
		return 0, dbErr(ctx, err, "count stuck orders")
	}
	return n, nil
}
