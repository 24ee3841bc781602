package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow"
)

// defaultLabelledLimit is the page LabelledDecisions returns when asked for
// none: enough to refit a model, small enough to hold in memory.
const defaultLabelledLimit = 10000

const decisionCols = `order_id, event_type, user_id, event_id, decision, score, model_version,
	shadow_version, shadow_score, decided_at`

// SaveDecision stores d unless a decision for (d.OrderID, d.EventType) is
// already stored, and returns the stored one: the first verdict always wins,
// so a risk engine that scores a redelivered event again still sends what it
// sent the first time. The insert is INSERT … ON CONFLICT DO NOTHING, so of
// concurrent saves of one key (two risk replicas given the same event) one
// wins and all return its verdict. d is not modified; DecidedAt is kept to
// the nanosecond, in UTC.
func (s *Store) SaveDecision(ctx context.Context, d *orderflow.RiskDecision) (*orderflow.RiskDecision, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	var stored *orderflow.RiskDecision
	err := s.inTx(ctx, readWrite, "save decision", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO risk_decisions (`+decisionCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (order_id, event_type) DO NOTHING`,
			d.OrderID, string(d.EventType), d.UserID, d.EventID, string(d.Decision), d.Score, d.ModelVersion,
			d.ShadowVersion, d.ShadowScore, nanos(d.DecidedAt))
		if err != nil {
			return err
		}
		stored, _, err = scanDecision(tx.QueryRow(ctx, `SELECT `+decisionCols+` FROM risk_decisions
			WHERE order_id = $1 AND event_type = $2`, d.OrderID, string(d.EventType)), false)
		if errors.Is(err, pgx.ErrNoRows) {
			return orderflow.Errorf(orderflow.EInternal, "postgres: decision for %s vanished after insert", d.OrderID)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return stored, nil
}

// scanDecision reads decisionCols, followed by the label when labelled.
func scanDecision(row pgx.Row, labelled bool) (*orderflow.RiskDecision, bool, error) {
	var (
		d                   orderflow.RiskDecision
		eventType, decision string
		decidedAt           int64
		fraud               bool
	)
	dest := []any{&d.OrderID, &eventType, &d.UserID, &d.EventID, &decision, &d.Score, &d.ModelVersion,
		&d.ShadowVersion, &d.ShadowScore, &decidedAt}
	if labelled {
		dest = append(dest, &fraud)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, false, err
	}
	d.EventType, d.Decision, d.DecidedAt = orderflow.EventType(eventType), orderflow.Decision(decision), fromNanos(decidedAt)
	return &d, fraud, nil
}

// SetLabel records ground truth for orderID; a later label replaces an
// earlier one (a chargeback overturns "good"). A label for an order without
// a stored decision is kept and joins once the decision exists.
func (s *Store) SetLabel(ctx context.Context, orderID string, fraud bool) error {
	if orderID == "" {
		return orderflow.Invalid("order_id", "order id is required")
	}
	return s.inTx(ctx, readWrite, "set label", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO risk_labels (order_id, fraud, labelled_at) VALUES ($1, $2, $3)
			ON CONFLICT (order_id) DO UPDATE SET fraud = excluded.fraud, labelled_at = excluded.labelled_at`,
			orderID, fraud, nanos(s.Now()))
		return err
	})
}

// LabelledDecisions returns up to limit (10,000 when limit <= 0) risk.decided
// decisions that have a label, oldest decision first: the training and
// evaluation set of the risk models.
func (s *Store) LabelledDecisions(ctx context.Context, limit int) ([]orderflow.LabelledDecision, error) {
	if limit <= 0 {
		limit = defaultLabelledLimit
	}
	rows, err := s.pool.Query(ctx, `SELECT d.order_id, d.event_type, d.user_id, d.event_id, d.decision, d.score,
		d.model_version, d.shadow_version, d.shadow_score, d.decided_at, l.fraud
		FROM risk_decisions d JOIN risk_labels l ON l.order_id = d.order_id
		WHERE d.event_type = $1 ORDER BY d.decided_at, d.order_id LIMIT $2`, string(orderflow.EventRiskDecided), limit)
	if err != nil {
		return nil, dbErr(ctx, err, "list labelled decisions")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (orderflow.LabelledDecision, error) {
		d, fraud, err := scanDecision(r, true)
		if err != nil {
			return orderflow.LabelledDecision{}, err
		}
		return orderflow.LabelledDecision{RiskDecision: *d, Fraud: fraud}, nil
	})
	if err != nil {
		return nil, dbErr(ctx, err, "list labelled decisions")
	}
	if out == nil {
		out = []orderflow.LabelledDecision{}
	}
	return out, nil
}
