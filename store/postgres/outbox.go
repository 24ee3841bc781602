package postgres

import (
	"context"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow"
)

// RelayFence is the fencing row of the outbox relay: the newest lease token
// MarkPublished has accepted.
const RelayFence = "outbox-relay"

// UnpublishedEvents returns up to limit (50 when limit <= 0) outbox events
// the relay has not marked published yet, lowest seq first.
//
// This, and not "seq > last published seq", is how the relay must read: seq
// comes from a sequence, so a transaction that took seq 10 may commit after
// one that took seq 11. A cursor at 11 would skip 10 forever; a row that is
// unpublished is returned by every call until it is marked, however late it
// committed. Delivery is at least once: a relay that dies between copying
// and marking copies again, and consumers are idempotent.
func (s *Store) UnpublishedEvents(ctx context.Context, limit int) ([]orderflow.Event, error) {
	if limit <= 0 {
		limit = defaultPageSize
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, id, type, order_id, payload, headers, created_at
		FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1`, limit)
	if err != nil {
		return nil, dbErr(ctx, err, "list unpublished events")
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (orderflow.Event, error) {
		var e orderflow.Event
		var created int64
		err := r.Scan(&e.Seq, &e.ID, &e.Type, &e.OrderID, &e.Payload, &e.Headers, &created)
		e.CreatedAt = fromNanos(created)
		return e, err
	})
	if err != nil {
		return nil, dbErr(ctx, err, "list unpublished events")
	}
	if evs == nil {
		evs = []orderflow.Event{}
	}
	return evs, nil
}

// MarkPublished marks the outbox rows seqs as published, provided
// fencingToken is no older than the newest token it has accepted before; it
// records the token in the same transaction. A stale token (a relay that
// lost its lease while a successor already marked rows) is a conflict and
// marks nothing: such a relay must stop. Seqs already marked, or pruned, are
// left as they are, so marking again is harmless.
//
// The token check is one UPDATE … WHERE token <= $1: two relays cannot both
// pass it in an order that lets the older one write after the newer one.
func (s *Store) MarkPublished(ctx context.Context, seqs []int64, fencingToken uint64) error {
	if fencingToken > math.MaxInt64 {
		return orderflow.Errorf(orderflow.EInvalid, "fencing token %d does not fit a BIGINT", fencingToken)
	}
	token := int64(fencingToken)
	return s.inTx(ctx, readWrite, "mark published", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE fencing SET token = $1 WHERE name = $2 AND token <= $1`, token, RelayFence)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return orderflow.Errorf(orderflow.EConflict,
				"fencing token %d is older than the newest the outbox has seen: this relay lost its lease", fencingToken)
		}
		if len(seqs) == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE outbox SET published_at = $1 WHERE seq = ANY($2) AND published_at IS NULL`,
			nanos(s.Now()), seqs)
		return err
	})
}

// PruneOutbox deletes the events that were published before before and
// returns how many. Unpublished events are never pruned, however old.
func (s *Store) PruneOutbox(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, readWrite, "prune outbox", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1`, nanos(before))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
