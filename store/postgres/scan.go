package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orderflow/orderflow"
)

// Times are stored as unix nanoseconds: exact, UTC by construction, and
// ordered as integers.
func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return fromNanos(*n)
}

// querier is what both the pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const orderCols = `id, user_id, amount_minor, currency, region, items, internal, ip, device_id,
	status, version, risk_decision, risk_score, risk_model_version, risk_decided_at, created_at, updated_at`

// scanOrder reads one row of orderCols.
func scanOrder(row pgx.Row) (*orderflow.Order, error) {
	var (
		o                orderflow.Order
		items            []byte
		status           string
		decision, model  *string
		score            *float64
		decidedAt        *int64
		created, updated int64
	)
	if err := row.Scan(&o.ID, &o.UserID, &o.AmountMinor, &o.Currency, &o.Region, &items, &o.Internal,
		&o.IP, &o.DeviceID, &status, &o.Version, &decision, &score, &model, &decidedAt, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(items, &o.Items); err != nil {
		return nil, err
	}
	o.Status = orderflow.Status(status)
	if decision != nil {
		r := &orderflow.Risk{Decision: orderflow.Decision(*decision), DecidedAt: nullNanos(decidedAt)}
		if score != nil {
			r.Score = *score
		}
		if model != nil {
			r.ModelVersion = *model
		}
		o.Risk = r
	}
	o.CreatedAt, o.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &o, nil
}

// loadOrder returns the order id, or not_found. With forUpdate it also locks
// the row until the transaction ends, so writers of one order take turns.
func loadOrder(ctx context.Context, q querier, id string, forUpdate bool) (*orderflow.Order, error) {
	sql := `SELECT ` + orderCols + ` FROM orders WHERE id = $1`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	o, err := scanOrder(q.QueryRow(ctx, sql, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, orderflow.Errorf(orderflow.ENotFound, "order %s not found", id)
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}

// riskArgs returns the four nullable risk columns of r.
func riskArgs(r *orderflow.Risk) (decision, score, model, decidedAt any) {
	if r == nil {
		return nil, nil, nil, nil
	}
	return string(r.Decision), r.Score, r.ModelVersion, nanos(r.DecidedAt)
}

// inboxCols are the columns scanInbox reads.
const inboxCols = `seq, order_id, event_type, event_id, decision, score, model_version, decided_at,
	received_at, outcome, applied_at`

func scanInbox(row pgx.Row) (orderflow.InboxEntry, error) {
	var (
		e                   orderflow.InboxEntry
		eventType, decision string
		decided, received   int64
		outcome             *string
		appliedAt           *int64
	)
	c := &e.Callback
	if err := row.Scan(&e.Seq, &c.OrderID, &eventType, &c.EventID, &decision, &c.Score, &c.ModelVersion,
		&decided, &received, &outcome, &appliedAt); err != nil {
		return e, err
	}
	c.EventType, c.Decision = orderflow.EventType(eventType), orderflow.Decision(decision)
	c.DecidedAt, e.ReceivedAt = fromNanos(decided), fromNanos(received)
	if outcome != nil {
		e.Outcome = orderflow.Outcome(*outcome)
	}
	e.AppliedAt = nullNanos(appliedAt)
	return e, nil
}

// inboxOf returns the order's inbox entries in arrival order, only the
// unapplied ones when unappliedOnly.
func inboxOf(ctx context.Context, q querier, orderID string, unappliedOnly bool) ([]orderflow.InboxEntry, error) {
	sql := `SELECT ` + inboxCols + ` FROM inbox WHERE order_id = $1`
	if unappliedOnly {
		sql += ` AND outcome IS NULL`
	}
	rows, err := q.Query(ctx, sql+` ORDER BY seq`, orderID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (orderflow.InboxEntry, error) { return scanInbox(r) })
}
