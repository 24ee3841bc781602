package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/orderflow/orderflow"
)

// RecordCallback records c in the inbox under (order id, event type) and
// returns once it is durable. Accepted: c is new. Duplicate: the same verdict
// (orderflow.Callback.SameVerdict) is recorded already. A different verdict is
// a conflict; an unknown order is not_found.
func (s *Store) RecordCallback(ctx context.Context, c *orderflow.Callback) (orderflow.RecordResult, error) {
	if c == nil {
		return 0, orderflow.Invalid("", "callback is required")
	}
	// A sender's retry usually finds its callback committed: answer it from a
	// read connection and leave the writer to new work.
	if prior, err := recordedCallback(ctx, s.r(), c); err != nil {
		return 0, err
	} else if prior != nil {
		return compareVerdict(c, prior)
	}
	var res orderflow.RecordResult
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		res, err = s.recordCallback(ctx, s.w(tx), c)
		return err
	})
	if err != nil {
		return 0, err
	}
	return res, nil
}

// RecordAndApplyCallback is RecordCallback followed, when c is accepted, by
// ApplyCallbacks of its order in the same write transaction: the record and
// its apply cost one queued write and one commit instead of two, and the
// order is decided when the callback's 2xx goes out. applied reports that
// the apply ran; when it did not (c was not accepted, or the apply failed and
// was rolled back to its own savepoint, leaving the record durable), the
// caller schedules the apply as after RecordCallback. The outcomes of the
// record are RecordCallback's.
func (s *Store) RecordAndApplyCallback(ctx context.Context, c *orderflow.Callback) (orderflow.RecordResult, bool, error) {
	if c == nil {
		return 0, false, orderflow.Invalid("", "callback is required")
	}
	// No look on a read connection first, unlike RecordCallback: nearly
	// every callback is new, and the insert below answers a repeat anyway
	// (its ON CONFLICT costs the writer one lookup); the read cost every
	// callback a query for the benefit of the rare retry.
	var (
		res     orderflow.RecordResult
		applied bool
	)
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		w := s.w(tx)
		var err error
		if res, err = s.recordCallback(ctx, w, c); err != nil || res != orderflow.Accepted {
			return err
		}
		applied, err = s.applyNested(ctx, w, c.OrderID)
		return err
	})
	if err != nil {
		return 0, false, err
	}
	return res, applied, nil
}

// applyNested runs applyCallbacks inside a savepoint of its own: an apply
// that fails (it should not: the writer is alone on the order) is undone
// alone and reported as not applied, and only a failure to undo it fails the
// caller's write.
func (s *Store) applyNested(ctx context.Context, w runner, orderID string) (bool, error) {
	if _, err := w.ExecContext(ctx, qSavepointApply); err != nil {
		return false, dbErr(ctx, err, "savepoint apply")
	}
	if _, err := s.applyCallbacks(ctx, w, orderID); err != nil {
		if _, rerr := w.ExecContext(ctx, qRollbackToApply); rerr != nil {
			return false, dbErr(ctx, rerr, "rollback apply")
		}
		if _, rerr := w.ExecContext(ctx, qReleaseApply); rerr != nil {
			return false, dbErr(ctx, rerr, "release apply")
		}
		return false, nil
	}
	if _, err := w.ExecContext(ctx, qReleaseApply); err != nil {
		return false, dbErr(ctx, err, "release apply")
	}
	return true, nil
}

// recordCallback is RecordCallback inside the write transaction, where no
// other write can interleave: insert if the key is free, else compare with
// what is there.
func (s *Store) recordCallback(ctx context.Context, tx runner, c *orderflow.Callback) (orderflow.RecordResult, error) {
	res, err := tx.ExecContext(ctx, qInsertCallback,
		c.OrderID, string(c.EventType), c.EventID, string(c.Decision), c.Score, c.ModelVersion,
		nanos(c.DecidedAt), nanos(s.Now()))
	if isForeignKeyViolation(err) {
		return 0, orderflow.Errorf(orderflow.ENotFound, "order %s not found", c.OrderID)
	}
	if err != nil {
		return 0, dbErr(ctx, err, "insert callback")
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, dbErr(ctx, err, "insert callback")
	} else if n == 1 {
		return orderflow.Accepted, nil
	}
	prior, err := recordedCallback(ctx, tx, c)
	if err != nil {
		return 0, err
	}
	if prior == nil {
		return 0, orderflow.Errorf(orderflow.EInternal, "sqlite: callback neither inserted nor found")
	}
	return compareVerdict(c, prior)
}

// recordedCallback returns the callback recorded under c's key, or nil.
func recordedCallback(ctx context.Context, q runner, c *orderflow.Callback) (*orderflow.Callback, error) {
	e, err := scanInbox(q.QueryRowContext(ctx, qCallbackByKey, c.OrderID, string(c.EventType)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, dbErr(ctx, err, "read inbox")
	}
	return &e.Callback, nil
}

func compareVerdict(c, prior *orderflow.Callback) (orderflow.RecordResult, error) {
	if c.SameVerdict(prior) {
		return orderflow.Duplicate, nil
	}
	return 0, orderflow.Errorf(orderflow.EConflict,
		"a different verdict for %s of order %s was recorded already", c.EventType, c.OrderID)
}

// ApplyCallbacks applies the order's unapplied inbox entries in arrival order
// through orderflow.ApplyInbox, in one transaction: the settled entries get
// their outcome, the order its new state (guarded by its version: a conflict
// means it changed meanwhile and the caller should retry), the history its
// transitions. It returns how many entries settled; an entry that must wait
// stays unapplied.
func (s *Store) ApplyCallbacks(ctx context.Context, orderID string) (int, error) {
	// Nothing to apply is the common case for the sweeper and for repeats:
	// find it out without taking a place in the write queue.
	var pending int
	if err := s.r().QueryRowContext(ctx, qCountUnapplied, orderID).Scan(&pending); err != nil {
		return 0, dbErr(ctx, err, "count unapplied")
	}
	if pending == 0 {
		if _, err := loadOrder(ctx, s.r(), orderID); err != nil {
			return 0, err
		}
		return 0, nil
	}
	var n int
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		n, err = s.applyCallbacks(ctx, s.w(tx), orderID)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (s *Store) applyCallbacks(ctx context.Context, tx runner, orderID string) (int, error) {
	o, err := loadOrderState(ctx, tx, orderID)
	if err != nil {
		return 0, err
	}
	pending, err := unapplied(ctx, tx, orderID)
	if err != nil || len(pending) == 0 {
		return 0, err
	}
	now := s.Now().UTC()
	next, settled, changes := orderflow.ApplyInbox(*o, pending, now)
	for _, e := range settled {
		if _, err := tx.ExecContext(ctx, qSettle, string(e.Outcome), nanos(e.AppliedAt), e.Seq); err != nil {
			return 0, dbErr(ctx, err, "settle callback")
		}
	}
	if len(changes) > 0 {
		if err := updateOrder(ctx, tx, &next, o.Version); err != nil {
			return 0, err
		}
		for _, c := range changes {
			if err := insertTransition(ctx, tx, orderID, c, string(c.Cause)); err != nil {
				return 0, err
			}
		}
	}
	return len(settled), nil
}

// unapplied returns the order's unapplied inbox entries in arrival order.
func unapplied(ctx context.Context, q runner, orderID string) ([]orderflow.InboxEntry, error) {
	rows, err := q.QueryContext(ctx, qUnappliedOf, orderID)
	if err != nil {
		return nil, dbErr(ctx, err, "read inbox")
	}
	defer rows.Close()
	var out []orderflow.InboxEntry
	for rows.Next() {
		e, err := scanInbox(rows)
		if err != nil {
			return nil, dbErr(ctx, err, "scan inbox")
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, err, "read inbox")
	}
	return out, nil
}

// UnappliedOrders returns up to limit ids of orders with unapplied inbox
// entries, the order with the oldest such entry first.
func (s *Store) UnappliedOrders(ctx context.Context, limit int) ([]string, error) {
	if limit <= 0 {
		limit = defaultPageSize
	}
	rows, err := s.r().QueryContext(ctx, qUnappliedOrders, limit)
	if err != nil {
		return nil, dbErr(ctx, err, "list unapplied")
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, dbErr(ctx, err, "scan unapplied")
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, err, "list unapplied")
	}
	return ids, nil
}
