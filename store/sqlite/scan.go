package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/orderflow/orderflow"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Times are stored as unix nanoseconds: exact, UTC by construction, and
// ordered as integers.
func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromNanos(n.Int64)
}

const orderCols = `id, user_id, amount_minor, currency, region, items, internal, ip, device_id,
	status, version, risk_decision, risk_score, risk_model_version, risk_decided_at, created_at, updated_at`

// riskCols are the scan targets of the four nullable risk columns, in
// their order in orderCols (the inverse of riskArgs).
type riskCols struct {
	decision, model sql.NullString
	score           sql.NullFloat64
	decidedAt       sql.NullInt64
}

func (c *riskCols) risk() *orderflow.Risk {
	if !c.decision.Valid {
		return nil
	}
	return &orderflow.Risk{
		Decision:     orderflow.Decision(c.decision.String),
		Score:        c.score.Float64,
		ModelVersion: c.model.String,
		DecidedAt:    nullNanos(c.decidedAt),
	}
}

// scanOrder reads one row of orderCols.
func scanOrder(sc interface{ Scan(...any) error }) (*orderflow.Order, error) {
	var (
		o                orderflow.Order
		items            string
		status           string
		rc               riskCols
		created, updated int64
	)
	if err := sc.Scan(&o.ID, &o.UserID, &o.AmountMinor, &o.Currency, &o.Region, &items, &o.Internal,
		&o.IP, &o.DeviceID, &status, &o.Version, &rc.decision, &rc.score, &rc.model, &rc.decidedAt, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(items), &o.Items); err != nil {
		return nil, err
	}
	o.Status, o.Risk = orderflow.Status(status), rc.risk()
	o.CreatedAt, o.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &o, nil
}

// loadOrder returns the order id, or not_found.
func loadOrder(ctx context.Context, q runner, id string) (*orderflow.Order, error) {
	o, err := scanOrder(q.QueryRowContext(ctx, qOrderByID, id))
	return o, loadErr(ctx, err, id)
}

// loadOrderState returns the order id with only the fields that applying
// callbacks reads and updateOrder writes (ID, Status, Version, Risk,
// UpdatedAt), or not_found.
func loadOrderState(ctx context.Context, q runner, id string) (*orderflow.Order, error) {
	var (
		status  string
		rc      riskCols
		updated int64
	)
	o := &orderflow.Order{ID: id}
	err := q.QueryRowContext(ctx, qOrderStateByID, id).Scan(&status, &o.Version, &rc.decision, &rc.score, &rc.model, &rc.decidedAt, &updated)
	if err != nil {
		return nil, loadErr(ctx, err, id)
	}
	o.Status, o.Risk, o.UpdatedAt = orderflow.Status(status), rc.risk(), fromNanos(updated)
	return o, nil
}

// loadErr maps a failed load of order id: no row is not_found.
func loadErr(ctx context.Context, err error, id string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return orderflow.Errorf(orderflow.ENotFound, "order %s not found", id)
	}
	if err != nil {
		return dbErr(ctx, err, "load order")
	}
	return nil
}

// riskArgs returns the four nullable risk columns of r.
func riskArgs(r *orderflow.Risk) (decision, score, model, decidedAt any) {
	if r == nil {
		return nil, nil, nil, nil
	}
	return string(r.Decision), r.Score, r.ModelVersion, nanos(r.DecidedAt)
}

// isUniqueViolation reports whether err is a primary-key or UNIQUE conflict.
func isUniqueViolation(err error) bool {
	var e *msqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// isForeignKeyViolation reports whether err is a foreign-key conflict: a
// row that names an order that does not exist.
func isForeignKeyViolation(err error) bool {
	var e *msqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// inboxCols are the columns scanInbox reads.
const inboxCols = `seq, order_id, event_type, event_id, decision, score, model_version, decided_at,
	received_at, outcome, applied_at`

func scanInbox(sc interface{ Scan(...any) error }) (orderflow.InboxEntry, error) {
	var (
		e                   orderflow.InboxEntry
		eventType, decision string
		decided, received   int64
		outcome             sql.NullString
		appliedAt           sql.NullInt64
	)
	c := &e.Callback
	if err := sc.Scan(&e.Seq, &c.OrderID, &eventType, &c.EventID, &decision, &c.Score, &c.ModelVersion,
		&decided, &received, &outcome, &appliedAt); err != nil {
		return e, err
	}
	c.EventType, c.Decision = orderflow.EventType(eventType), orderflow.Decision(decision)
	c.DecidedAt, e.ReceivedAt = fromNanos(decided), fromNanos(received)
	e.Outcome, e.AppliedAt = orderflow.Outcome(outcome.String), nullNanos(appliedAt)
	return e, nil
}
