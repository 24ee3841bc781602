package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow"
)

// RecordCallback records c in the inbox under (order id, event type) and
// returns once it is committed. Accepted: c is new. Duplicate: the same
// verdict (orderflow.Callback.SameVerdict) is recorded already. A different
// verdict is a conflict; an unknown order is not_found.
//
// The insert is one INSERT … ON CONFLICT DO NOTHING: of concurrent senders
// of one key, exactly one inserts; the others wait for it to commit and then
// read its row.
func (s *Store) RecordCallback(ctx context.Context, c *orderflow.Callback) (orderflow.RecordResult, error) {
	if c == nil {
		return 0, orderflow.Invalid("", "callback is required")
	}
	var res orderflow.RecordResult
	err := s.inTx(ctx, readWrite, "record callback", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO inbox (order_id, event_type, event_id, decision, score, model_version,
			decided_at, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (order_id, event_type) DO NOTHING`,
			c.OrderID, string(c.EventType), c.EventID, string(c.Decision), c.Score, c.ModelVersion,
			nanos(c.DecidedAt), nanos(s.Now()))
		if pgCode(err) == codeForeignKeyViolation {
			return orderflow.Errorf(orderflow.ENotFound, "order %s not found", c.OrderID)
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			res = orderflow.Accepted
			return nil
		}
		prior, err := scanInbox(tx.QueryRow(ctx, `SELECT `+inboxCols+` FROM inbox WHERE order_id = $1 AND event_type = $2`,
			c.OrderID, string(c.EventType)))
		if errors.Is(err, pgx.ErrNoRows) {
			// The conflicting row was there for ON CONFLICT and gone for
			// this read: impossible while inbox rows are never deleted, but
			// if they ever are, running again decides afresh.
			return errRetry
		}
		if err != nil {
			return err
		}
		if !c.SameVerdict(&prior.Callback) {
			return orderflow.Errorf(orderflow.EConflict,
				"a different verdict for %s of order %s was recorded already", c.EventType, c.OrderID)
		}
		res = orderflow.Duplicate
		return nil
	})
	if err != nil {
		return 0, err
	}
	return res, nil
}

// ApplyCallbacks applies the order's unapplied inbox entries in arrival order
// through orderflow.ApplyInbox, in one transaction: the settled entries get
// their outcome, the order its new state, the history its transitions. It
// returns how many entries settled; an entry that must wait stays unapplied.
//
// Concurrent calls for one order take turns on the order's row lock (SELECT
// … FOR UPDATE), and the one that comes second sees what the first settled,
// so every entry settles exactly once. The order's UPDATE is still guarded
// by its version: should anything change the order without that lock, the
// guard turns it into a conflict (retry) instead of a lost update.
func (s *Store) ApplyCallbacks(ctx context.Context, orderID string) (int, error) {
	var n int
	err := s.inTx(ctx, readWrite, "apply callbacks", func(tx pgx.Tx) error {
		n = 0
		// Lock the order only when it has something to apply: nothing to
		// apply is the common case for the sweeper and for repeats, and a
		// lock would cost them a transaction id and a WAL flush.
		o, err := scanOrder(tx.QueryRow(ctx, qLockOrderWithWork, orderID))
		if errors.Is(err, pgx.ErrNoRows) {
			_, err = loadOrder(ctx, tx, orderID, false) // not_found, or nothing to do
			return err
		}
		if err != nil {
			return err
		}
		// Read under the lock: in READ COMMITTED every statement sees what
		// committed before it started, the previous holder's work included
		// (so this may find nothing left).
		entries, err := inboxOf(ctx, tx, orderID, true)
		if err != nil || len(entries) == 0 {
			return err
		}
		now := s.Now().UTC()
		next, settled, changes := orderflow.ApplyInbox(*o, entries, now)
		if err := writeApplied(ctx, tx, o.Version, &next, settled, changes); err != nil {
			return err
		}
		n = len(settled)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// qLockOrderWithWork locks and returns the order when it has unapplied inbox
// entries, and returns no row otherwise (an unknown order included). After
// waiting for another applier's lock, PostgreSQL re-checks the WHERE against
// the order row's new version, but the EXISTS still reads the inbox as of the
// statement's start, so it may lock an order whose work is gone; the inbox
// read that follows is a new statement and sees what that applier settled.
const qLockOrderWithWork = `SELECT ` + orderCols + ` FROM orders
	WHERE id = $1 AND EXISTS (SELECT 1 FROM inbox WHERE order_id = $1 AND outcome IS NULL)
	FOR UPDATE`

// writeApplied writes what ApplyInbox decided (settled entries, the order's
// new state guarded by its version prev, its transitions) as one pipelined
// batch: one round trip instead of one per statement.
func writeApplied(ctx context.Context, tx pgx.Tx, prev int64, next *orderflow.Order, settled []orderflow.InboxEntry, changes []orderflow.Change) error {
	b := &pgx.Batch{}
	for _, e := range settled {
		b.Queue(`UPDATE inbox SET outcome = $1, applied_at = $2 WHERE seq = $3 AND outcome IS NULL`,
			string(e.Outcome), nanos(e.AppliedAt), e.Seq)
	}
	if len(changes) > 0 {
		rd, rs, rm, ra := riskArgs(next.Risk)
		b.Queue(qUpdateOrder, string(next.Status), next.Version, rd, rs, rm, ra, nanos(next.UpdatedAt), next.ID, prev)
		for _, c := range changes {
			b.Queue(qInsertTransition, next.ID, string(c.From), string(c.To), string(c.Cause), c.Version, nanos(c.At))
		}
	}
	br := tx.SendBatch(ctx, b)
	for _, e := range settled {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return err
		}
		if tag.RowsAffected() == 0 {
			br.Close()
			return orderflow.Errorf(orderflow.EConflict, "callback %d of order %s was settled concurrently; retry", e.Seq, next.ID)
		}
	}
	if len(changes) > 0 {
		tag, err := br.Exec()
		if err == nil && tag.RowsAffected() == 0 {
			err = orderflow.Errorf(orderflow.EConflict, "order %s changed concurrently (version %d); retry", next.ID, prev)
		}
		if err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}

// UnappliedOrders returns up to limit ids of orders with unapplied inbox
// entries, the order with the oldest such entry first.
func (s *Store) UnappliedOrders(ctx context.Context, limit int) ([]string, error) {
	if limit <= 0 {
		limit = defaultPageSize
	}
	rows, err := s.pool.Query(ctx, `SELECT order_id FROM inbox WHERE outcome IS NULL
		GROUP BY order_id ORDER BY min(seq) LIMIT $1`, limit)
	if err != nil {
		return nil, dbErr(ctx, err, "list unapplied")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, dbErr(ctx, err, "list unapplied")
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}
