package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/orderflow/orderflow"
)

// idempotencyTTL is how long a key is kept when the caller gives no expiry
// (API.md: 24 h).
const idempotencyTTL = 24 * time.Hour

// defaultPageSize is the page size when a filter asks for none (API.md).
const defaultPageSize = 50

// CreateOrder inserts o, its event ev (when not nil) and the idempotency
// record for key (when not nil) in one transaction. Zero fields of o get
// defaults: CreatedAt now, UpdatedAt = CreatedAt, Status pending_review,
// Version 1. On success ev.Seq is set to the event's outbox position.
//
// A key recorded before and not yet expired answers for the request: the
// same RequestHash returns the order as first stored and replay=true, a
// different one is a conflict. An expired key is treated as absent and
// replaced. An order id already taken is a conflict.
func (s *Store) CreateOrder(ctx context.Context, o *orderflow.Order, ev *orderflow.Event, key *orderflow.IdempotencyKey) (*orderflow.Order, bool, error) {
	if o == nil || o.ID == "" {
		return nil, false, orderflow.Invalid("id", "order id is required")
	}
	stored := o.Defaulted(s.Now())
	var row *orderflow.Event
	if ev != nil {
		e := *ev
		if e.OrderID == "" {
			e.OrderID = stored.ID
		}
		if e.CreatedAt.IsZero() {
			e.CreatedAt = stored.CreatedAt
		}
		row = &e
	}
	// Everything JSON is encoded here, before the write is queued: the
	// writer runs every write of the process one after another, so what
	// can be done outside it is not done in it.
	items, err := encodeItems(stored.Items)
	if err != nil {
		return nil, false, err
	}
	var headers, snapshot []byte
	if row != nil {
		if headers, err = encodeHeaders(row.Headers); err != nil {
			return nil, false, err
		}
	}
	if key != nil {
		if snapshot, err = json.Marshal(stored); err != nil {
			return nil, false, orderflow.Wrap(orderflow.EInternal, err, "sqlite: encode idempotent response")
		}
	}
	var (
		answer *orderflow.Order
		replay bool
		seq    int64
	)
	err = s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		w := s.w(tx)
		if key != nil {
			prior, err := s.checkKey(ctx, w, key)
			if err != nil || prior != nil {
				answer, replay = prior, prior != nil
				return err
			}
		}
		if err := insertOrder(ctx, w, stored, items); err != nil {
			return err
		}
		if row != nil {
			var err error
			if seq, err = insertEvent(ctx, w, row, headers); err != nil {
				return err
			}
		}
		if key != nil {
			if err := s.insertKey(ctx, w, key, stored.ID, snapshot); err != nil {
				return err
			}
		}
		answer = stored
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if ev != nil && !replay {
		ev.Seq = seq
	}
	return answer, replay, nil
}

// checkKey returns the order first answered under key, nil when the key is
// unknown or expired (an expired one is deleted so it can be reused), or a
// conflict when the key was used for another request.
func (s *Store) checkKey(ctx context.Context, tx runner, key *orderflow.IdempotencyKey) (*orderflow.Order, error) {
	var hash, response string
	var expires int64
	err := tx.QueryRowContext(ctx, qKeyByKey, key.Key).
		Scan(&hash, &response, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, dbErr(ctx, err, "read idempotency key")
	}
	if expires <= nanos(s.Now()) {
		if _, err := tx.ExecContext(ctx, qDeleteKey, key.Key); err != nil {
			return nil, dbErr(ctx, err, "delete expired idempotency key")
		}
		return nil, nil
	}
	if hash != key.RequestHash {
		return nil, orderflow.Errorf(orderflow.EConflict, "Idempotency-Key was already used for a different request")
	}
	var o orderflow.Order
	if err := json.Unmarshal([]byte(response), &o); err != nil {
		return nil, orderflow.Wrap(orderflow.EInternal, err, "sqlite: decode idempotent response")
	}
	return &o, nil
}

// insertKey records key for the order orderID, answered with snapshot (the
// order's JSON).
func (s *Store) insertKey(ctx context.Context, tx runner, key *orderflow.IdempotencyKey, orderID string, snapshot []byte) error {
	now := s.Now()
	expires := key.ExpiresAt
	if expires.IsZero() {
		expires = now.Add(idempotencyTTL)
	}
	_, err := tx.ExecContext(ctx, qInsertKey, key.Key, key.RequestHash, orderID, string(snapshot), nanos(now), nanos(expires))
	if err != nil {
		return dbErr(ctx, err, "insert idempotency key")
	}
	return nil
}

// encodeItems is the items column: a JSON array, [] for none.
func encodeItems(items []orderflow.Item) ([]byte, error) {
	if items == nil {
		return []byte("[]"), nil
	}
	b, err := json.Marshal(items)
	if err != nil {
		return nil, orderflow.Wrap(orderflow.EInternal, err, "sqlite: encode items")
	}
	return b, nil
}

// encodeHeaders is the outbox's headers column: a JSON object, {} for none.
func encodeHeaders(h map[string]string) ([]byte, error) {
	if len(h) == 0 {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, orderflow.Wrap(orderflow.EInternal, err, "sqlite: encode event headers")
	}
	return b, nil
}

// insertOrder inserts o with its items column already encoded.
func insertOrder(ctx context.Context, tx runner, o *orderflow.Order, items []byte) error {
	rd, rs, rm, ra := riskArgs(o.Risk)
	_, err := tx.ExecContext(ctx, qInsertOrder,
		o.ID, o.UserID, o.AmountMinor, o.Currency, o.Region, string(items), o.Internal, o.IP, o.DeviceID,
		string(o.Status), o.Version, rd, rs, rm, ra, nanos(o.CreatedAt), nanos(o.UpdatedAt))
	if isUniqueViolation(err) {
		return orderflow.Errorf(orderflow.EConflict, "order %s already exists", o.ID)
	}
	if err != nil {
		return dbErr(ctx, err, "insert order")
	}
	return nil
}

// insertEvent appends e, with its headers column already encoded, to the
// outbox and returns its seq.
func insertEvent(ctx context.Context, tx runner, e *orderflow.Event, headers []byte) (int64, error) {
	payload := e.Payload
	if payload == nil {
		payload = []byte{}
	}
	res, err := tx.ExecContext(ctx, qInsertEvent, e.ID, e.Type, e.OrderID, payload, string(headers), nanos(e.CreatedAt.UTC()))
	if isUniqueViolation(err) {
		return 0, orderflow.Errorf(orderflow.EConflict, "event %s already exists", e.ID)
	}
	if err != nil {
		return 0, dbErr(ctx, err, "insert event")
	}
	return res.LastInsertId()
}

// Order returns the order id, or not_found.
func (s *Store) Order(ctx context.Context, id string) (*orderflow.Order, error) {
	return loadOrder(ctx, s.r(), id)
}

// Orders returns up to f.Limit orders (50 when unset) matching f's user and
// status, newest first by (created_at, id), after f.After when set.
func (s *Store) Orders(ctx context.Context, f orderflow.OrderFilter) ([]*orderflow.Order, error) {
	var where []string
	var args []any
	if f.UserID != "" {
		where, args = append(where, "user_id = ?"), append(args, f.UserID)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(f.Status))
	}
	if f.After != nil {
		// A row-value comparison is what lets SQLite seek straight into the
		// (…, created_at DESC, id DESC) index instead of scanning from the top.
		where, args = append(where, "(created_at, id) < (?, ?)"), append(args, nanos(f.After.CreatedAt), f.After.ID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultPageSize
	}
	q := `SELECT ` + orderCols + ` FROM orders`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	rows, err := s.readDB.QueryContext(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, dbErr(ctx, err, "list orders")
	}
	defer rows.Close()
	out := []*orderflow.Order{}
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, dbErr(ctx, err, "scan order")
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, err, "list orders")
	}
	return out, nil
}

// Transition applies a client's action, cancel or fulfill, to the order id
// through the state machine. A forbidden move is a conflict; a repeat of a
// move that already happened returns the order unchanged. A change bumps the
// version by one and is recorded in the order's history.
func (s *Store) Transition(ctx context.Context, id string, a orderflow.Action) (*orderflow.Order, error) {
	if a != orderflow.ActionCancel && a != orderflow.ActionFulfill {
		return nil, orderflow.Errorf(orderflow.EInvalid, "action %q is not a client action", a)
	}
	// Answer from a read connection when nothing would change: what it saw
	// is committed, hence durable, and repeats cost no write.
	cur, err := loadOrder(ctx, s.r(), id)
	if err != nil {
		return nil, err
	}
	if _, changed, err := orderflow.Transition(cur.Status, a); err != nil || !changed {
		return cur, err
	}
	var out *orderflow.Order
	err = s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		w := s.w(tx)
		o, err := loadOrder(ctx, w, id)
		if err != nil {
			return err
		}
		to, changed, err := orderflow.Transition(o.Status, a)
		if err != nil || !changed {
			out = o
			return err
		}
		now := s.Now().UTC()
		from := o.Status
		o.Status, o.Version, o.UpdatedAt = to, o.Version+1, now
		if err := updateOrder(ctx, w, o, o.Version-1); err != nil {
			return err
		}
		if err := insertTransition(ctx, w, id, orderflow.Change{From: from, To: to, Version: o.Version, At: now}, string(a)); err != nil {
			return err
		}
		out = o
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// updateOrder writes o's mutable columns if the stored version is still
// prev; otherwise someone else changed the order and the caller must retry.
func updateOrder(ctx context.Context, tx runner, o *orderflow.Order, prev int64) error {
	rd, rs, rm, ra := riskArgs(o.Risk)
	res, err := tx.ExecContext(ctx, qUpdateOrder,
		string(o.Status), o.Version, rd, rs, rm, ra, nanos(o.UpdatedAt), o.ID, prev)
	if err != nil {
		return dbErr(ctx, err, "update order")
	}
	if n, err := res.RowsAffected(); err != nil {
		return dbErr(ctx, err, "update order")
	} else if n == 0 {
		return orderflow.Errorf(orderflow.EConflict, "order %s changed concurrently (version %d); retry", o.ID, prev)
	}
	return nil
}

func insertTransition(ctx context.Context, tx runner, orderID string, c orderflow.Change, cause string) error {
	_, err := tx.ExecContext(ctx, qInsertTransition, orderID, string(c.From), string(c.To), cause, c.Version, nanos(c.At))
	if err != nil {
		return dbErr(ctx, err, "insert transition")
	}
	return nil
}

// History returns the order's creation, its recorded callbacks (with their
// outcome once applied) and its transitions, oldest first; at equal times
// creation comes first, then callbacks, then transitions, each in the order
// they were written. The reads share one snapshot.
func (s *Store) History(ctx context.Context, id string) ([]orderflow.HistoryEntry, error) {
	rtx, err := s.readDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, dbErr(ctx, err, "begin read")
	}
	defer rtx.Rollback()
	tx := s.rtx(rtx)
	o, err := loadOrder(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	h := []orderflow.HistoryEntry{{Kind: orderflow.HistoryCreated, At: o.CreatedAt}}
	rows, err := tx.QueryContext(ctx, qCallbacksOf, id)
	if err != nil {
		return nil, dbErr(ctx, err, "read inbox")
	}
	for rows.Next() {
		e, err := scanInbox(rows)
		if err != nil {
			rows.Close()
			return nil, dbErr(ctx, err, "scan inbox")
		}
		cb := e.Callback
		h = append(h, orderflow.HistoryEntry{Kind: orderflow.HistoryCallback, At: e.ReceivedAt,
			Callback: &cb, ReceivedAt: e.ReceivedAt, Outcome: e.Outcome})
	}
	if err := rows.Close(); err != nil {
		return nil, dbErr(ctx, err, "read inbox")
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, err, "read inbox")
	}
	rows, err = tx.QueryContext(ctx, qTransitionsOf, id)
	if err != nil {
		return nil, dbErr(ctx, err, "read transitions")
	}
	defer rows.Close()
	for rows.Next() {
		var from, to, cause string
		var version, at int64
		if err := rows.Scan(&from, &to, &cause, &version, &at); err != nil {
			return nil, dbErr(ctx, err, "scan transition")
		}
		h = append(h, orderflow.HistoryEntry{Kind: orderflow.HistoryTransition, At: fromNanos(at),
			From: orderflow.Status(from), To: orderflow.Status(to), Cause: cause, Version: version})
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, err, "read transitions")
	}
	// Entries were appended kind by kind in write order, so a stable sort on
	// time alone keeps that order among equal times.
	sort.SliceStable(h, func(i, j int) bool { return h[i].At.Before(h[j].At) })
	return h, nil
}

// PruneIdempotencyKeys deletes the keys that expired before now and returns
// how many.
func (s *Store) PruneIdempotencyKeys(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.w(tx).ExecContext(ctx, qPruneKeys, nanos(now))
		if err != nil {
			return dbErr(ctx, err, "prune idempotency keys")
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
