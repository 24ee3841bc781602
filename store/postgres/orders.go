package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

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
// replaced. An order id already taken is a conflict. Two replicas racing
// with one new key: the loser's transaction runs again and finds the
// winner's answer.
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
	var (
		answer *orderflow.Order
		replay bool
		seq    int64
	)
	err := s.inTx(ctx, readWrite, "create order", func(tx pgx.Tx) error {
		answer, replay, seq = nil, false, 0
		if key != nil {
			prior, err := s.checkKey(ctx, tx, key)
			if err != nil || prior != nil {
				answer, replay = prior, prior != nil
				return err
			}
		}
		if err := insertOrder(ctx, tx, stored); err != nil {
			return err
		}
		if row != nil {
			var err error
			if seq, err = insertEvent(ctx, tx, row); err != nil {
				return err
			}
		}
		if key != nil {
			if err := s.insertKey(ctx, tx, key, stored); err != nil {
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
func (s *Store) checkKey(ctx context.Context, tx pgx.Tx, key *orderflow.IdempotencyKey) (*orderflow.Order, error) {
	var hash, response string
	var expires int64
	err := tx.QueryRow(ctx, `SELECT request_hash, response, expires_at FROM idempotency_keys WHERE key = $1`, key.Key).
		Scan(&hash, &response, &expires)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	}
	if expires <= nanos(s.Now()) {
		if _, err := tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE key = $1`, key.Key); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if hash != key.RequestHash {
		return nil, orderflow.Errorf(orderflow.EConflict, "Idempotency-Key was already used for a different request")
	}
	var o orderflow.Order
	if err := json.Unmarshal([]byte(response), &o); err != nil {
		return nil, orderflow.Wrap(orderflow.EInternal, err, "postgres: decode idempotent response")
	}
	return &o, nil
}

func (s *Store) insertKey(ctx context.Context, tx pgx.Tx, key *orderflow.IdempotencyKey, o *orderflow.Order) error {
	snapshot, err := json.Marshal(o)
	if err != nil {
		return orderflow.Wrap(orderflow.EInternal, err, "postgres: encode idempotent response")
	}
	now := s.Now()
	expires := key.ExpiresAt
	if expires.IsZero() {
		expires = now.Add(idempotencyTTL)
	}
	_, err = tx.Exec(ctx, `INSERT INTO idempotency_keys (key, request_hash, order_id, response, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, key.Key, key.RequestHash, o.ID, string(snapshot), nanos(now), nanos(expires))
	if pgCode(err) == codeUniqueViolation {
		// Another transaction recorded this key after checkKey looked: run
		// again, and checkKey answers with what it recorded.
		return errRetry
	}
	return err
}

func insertOrder(ctx context.Context, tx pgx.Tx, o *orderflow.Order) error {
	items, err := json.Marshal(o.Items)
	if err != nil {
		return orderflow.Wrap(orderflow.EInternal, err, "postgres: encode items")
	}
	if o.Items == nil {
		items = []byte("[]")
	}
	rd, rs, rm, ra := riskArgs(o.Risk)
	_, err = tx.Exec(ctx, `INSERT INTO orders (`+orderCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		o.ID, o.UserID, o.AmountMinor, o.Currency, o.Region, string(items), o.Internal, o.IP, o.DeviceID,
		string(o.Status), o.Version, rd, rs, rm, ra, nanos(o.CreatedAt), nanos(o.UpdatedAt))
	if pgCode(err) == codeUniqueViolation {
		return orderflow.Errorf(orderflow.EConflict, "order %s already exists", o.ID)
	}
	return err
}

// insertEvent appends e to the outbox and returns its seq.
func insertEvent(ctx context.Context, tx pgx.Tx, e *orderflow.Event) (int64, error) {
	headers := e.Headers
	if headers == nil {
		headers = map[string]string{}
	}
	payload := e.Payload
	if payload == nil {
		payload = []byte{}
	}
	var seq int64
	err := tx.QueryRow(ctx, `INSERT INTO outbox (id, type, order_id, payload, headers, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq`,
		e.ID, e.Type, e.OrderID, payload, headers, nanos(e.CreatedAt.UTC())).Scan(&seq)
	if pgCode(err) == codeUniqueViolation {
		return 0, orderflow.Errorf(orderflow.EConflict, "event %s already exists", e.ID)
	}
	return seq, err
}

// Order returns the order id, or not_found.
func (s *Store) Order(ctx context.Context, id string) (*orderflow.Order, error) {
	o, err := loadOrder(ctx, s.pool, id, false)
	if err != nil {
		return nil, dbErr(ctx, err, "load order")
	}
	return o, nil
}

// Orders returns up to f.Limit orders (50 when unset) matching f's user and
// status, newest first by (created_at, id), after f.After when set.
func (s *Store) Orders(ctx context.Context, f orderflow.OrderFilter) ([]*orderflow.Order, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.UserID != "" {
		where = append(where, "user_id = "+arg(f.UserID))
	}
	if f.Status != "" {
		where = append(where, "status = "+arg(string(f.Status)))
	}
	if f.After != nil {
		// A row-value comparison lets the planner seek into the
		// (…, created_at DESC, id DESC) index instead of scanning from the top.
		where = append(where, "(created_at, id) < ("+arg(nanos(f.After.CreatedAt))+", "+arg(f.After.ID)+")")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultPageSize
	}
	q := `SELECT ` + orderCols + ` FROM orders`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ` + arg(limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, dbErr(ctx, err, "list orders")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*orderflow.Order, error) { return scanOrder(r) })
	if err != nil {
		return nil, dbErr(ctx, err, "list orders")
	}
	if out == nil {
		out = []*orderflow.Order{}
	}
	return out, nil
}

// Transition applies a client's action, cancel or fulfill, to the order id
// through the state machine. A forbidden move is a conflict; a repeat of a
// move that already happened returns the order unchanged and writes
// nothing. A change bumps the version by one and is recorded in the order's
// history.
func (s *Store) Transition(ctx context.Context, id string, a orderflow.Action) (*orderflow.Order, error) {
	if a != orderflow.ActionCancel && a != orderflow.ActionFulfill {
		return nil, orderflow.Errorf(orderflow.EInvalid, "action %q is not a client action", a)
	}
	var out *orderflow.Order
	err := s.inTx(ctx, readWrite, "transition", func(tx pgx.Tx) error {
		// A plain read first: a repeat or a forbidden move then takes no
		// row lock (which would cost a transaction id and a WAL flush).
		o, err := loadOrder(ctx, tx, id, false)
		if err != nil {
			return err
		}
		if _, changed, err := orderflow.Transition(o.Status, a); err != nil || !changed {
			out = o
			return err
		}
		if o, err = loadOrder(ctx, tx, id, true); err != nil {
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
		if err := updateOrder(ctx, tx, o, o.Version-1); err != nil {
			return err
		}
		if err := insertTransition(ctx, tx, id, orderflow.Change{From: from, To: to, Version: o.Version, At: now}, string(a)); err != nil {
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

// Statements shared by the single-statement and the batched write paths.
const (
	qUpdateOrder = `UPDATE orders SET status = $1, version = $2, risk_decision = $3, risk_score = $4,
		risk_model_version = $5, risk_decided_at = $6, updated_at = $7 WHERE id = $8 AND version = $9`
	qInsertTransition = `INSERT INTO transitions (order_id, from_status, to_status, cause, version, at)
		VALUES ($1, $2, $3, $4, $5, $6)`
)

// updateOrder writes o's mutable columns if the stored version is still
// prev; otherwise someone else changed the order and the caller must retry.
func updateOrder(ctx context.Context, tx pgx.Tx, o *orderflow.Order, prev int64) error {
	rd, rs, rm, ra := riskArgs(o.Risk)
	tag, err := tx.Exec(ctx, qUpdateOrder, string(o.Status), o.Version, rd, rs, rm, ra, nanos(o.UpdatedAt), o.ID, prev)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return orderflow.Errorf(orderflow.EConflict, "order %s changed concurrently (version %d); retry", o.ID, prev)
	}
	return nil
}

func insertTransition(ctx context.Context, tx pgx.Tx, orderID string, c orderflow.Change, cause string) error {
	_, err := tx.Exec(ctx, qInsertTransition, orderID, string(c.From), string(c.To), cause, c.Version, nanos(c.At))
	return err
}

// History returns the order's creation, its recorded callbacks (with their
// outcome once applied) and its transitions, oldest first; at equal times
// creation comes first, then callbacks, then transitions, each in the order
// they were written. The reads share one snapshot.
func (s *Store) History(ctx context.Context, id string) ([]orderflow.HistoryEntry, error) {
	var h []orderflow.HistoryEntry
	err := s.inTx(ctx, readOnlySnapshot, "history", func(tx pgx.Tx) error {
		o, err := loadOrder(ctx, tx, id, false)
		if err != nil {
			return err
		}
		h = []orderflow.HistoryEntry{{Kind: orderflow.HistoryCreated, At: o.CreatedAt}}
		entries, err := inboxOf(ctx, tx, id, false)
		if err != nil {
			return err
		}
		for _, e := range entries {
			cb := e.Callback
			h = append(h, orderflow.HistoryEntry{Kind: orderflow.HistoryCallback, At: e.ReceivedAt,
				Callback: &cb, ReceivedAt: e.ReceivedAt, Outcome: e.Outcome})
		}
		rows, err := tx.Query(ctx, `SELECT from_status, to_status, cause, version, at FROM transitions
			WHERE order_id = $1 ORDER BY id`, id)
		if err != nil {
			return err
		}
		ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (orderflow.HistoryEntry, error) {
			var from, to, cause string
			var version, at int64
			err := r.Scan(&from, &to, &cause, &version, &at)
			return orderflow.HistoryEntry{Kind: orderflow.HistoryTransition, At: fromNanos(at),
				From: orderflow.Status(from), To: orderflow.Status(to), Cause: cause, Version: version}, err
		})
		h = append(h, ts...)
		return err
	})
	if err != nil {
		return nil, err
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
	err := s.inTx(ctx, readWrite, "prune idempotency keys", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE expires_at < $1`, nanos(now))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
