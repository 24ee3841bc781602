package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/orderflow/orderflow"
)

var _ orderflow.DecisionStore = (*Store)(nil)

// defaultLabelledLimit is the page LabelledDecisions returns when asked for
// none: enough to refit a model, small enough to hold in memory.
const defaultLabelledLimit = 10000

// decisionSchema holds the risk engine's tables. They are the risk engine's,
// not the order service's, so like the bus's tables they are not an order
// store migration: the first write that finds them missing creates them, in
// its own transaction, and reads treat a missing table as empty. Times are
// unix nanoseconds in UTC, like the rest of the file.
const decisionSchema = `
-- risk_decisions: the risk engine's verdicts, one per (order_id, event_type),
-- stored before they are sent: the first one wins, so a redelivered event
-- resends the same verdict. shadow_* is the other model version's verdict,
-- kept to compare versions and never sent.
CREATE TABLE IF NOT EXISTS risk_decisions (
    order_id       TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    event_id       TEXT    NOT NULL,
    decision       TEXT    NOT NULL,
    score          REAL    NOT NULL,
    model_version  TEXT    NOT NULL,
    shadow_version TEXT    NOT NULL DEFAULT '',
    shadow_score   REAL    NOT NULL DEFAULT 0,
    decided_at     INTEGER NOT NULL,
    PRIMARY KEY (order_id, event_type)
) STRICT;

-- risk_labels: ground truth per order (a chargeback, a confirmed good order);
-- the last label wins. No foreign key: a label may arrive for an order whose
-- decision lives in another store, and it must not be refused for that.
CREATE TABLE IF NOT EXISTS risk_labels (
    order_id    TEXT    NOT NULL PRIMARY KEY,
    fraud       INTEGER NOT NULL,
    labelled_at INTEGER NOT NULL
) STRICT;
`

const (
	decisionCols = `order_id, event_type, user_id, event_id, decision, score, model_version,
		shadow_version, shadow_score, decided_at`
	// qInsertDecision inserts unless the key is taken: the first verdict
	// wins, and whoever lost the race reads the winner in the same write.
	qInsertDecision = `INSERT INTO risk_decisions (` + decisionCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id, event_type) DO NOTHING`
	qDecisionByKey = `SELECT ` + decisionCols + ` FROM risk_decisions WHERE order_id = ? AND event_type = ?`
	qUpsertLabel   = `INSERT INTO risk_labels (order_id, fraud, labelled_at) VALUES (?, ?, ?)
		ON CONFLICT (order_id) DO UPDATE SET fraud = excluded.fraud, labelled_at = excluded.labelled_at`
	qLabelled = `SELECT d.order_id, d.event_type, d.user_id, d.event_id, d.decision, d.score, d.model_version,
		d.shadow_version, d.shadow_score, d.decided_at, l.fraud
		FROM risk_decisions d JOIN risk_labels l ON l.order_id = d.order_id
		WHERE d.event_type = ? ORDER BY d.decided_at, d.order_id LIMIT ?`
)

// SaveDecision stores d unless a decision for (d.OrderID, d.EventType) is
// already stored, and returns the stored one: the first verdict always wins,
// so a risk engine that scores a redelivered event again still sends what it
// sent the first time. The check and the insert are one write, so two
// concurrent saves of one key return the same verdict. d is not modified;
// DecidedAt is kept to the nanosecond, in UTC.
func (s *Store) SaveDecision(ctx context.Context, d *orderflow.RiskDecision) (*orderflow.RiskDecision, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	ds := s.decisionStmts(ctx)
	// No look on a read connection first: nearly every save is the first
	// for its key, and the insert's ON CONFLICT answers a repeat in the same
	// write (then one lookup by key). The look cost every decision a query
	// on the read pool (~3 % of serve's CPU at 1,500 orders/s) to spare
	// the rare redelivery a place in a group commit.
	var stored *orderflow.RiskDecision
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		args := []any{d.OrderID, string(d.EventType), d.UserID, d.EventID,
			string(d.Decision), d.Score, d.ModelVersion, d.ShadowVersion, d.ShadowScore, nanos(d.DecidedAt.UTC())}
		var (
			res sql.Result
			err error
		)
		if ds != nil {
			res, err = tx.StmtContext(ctx, ds.insert).ExecContext(ctx, args...)
		} else {
			res, err = execCreating(ctx, tx, qInsertDecision, args...)
		}
		if err != nil {
			return dbErr(ctx, err, "insert decision")
		}
		if n, err := res.RowsAffected(); err != nil {
			return dbErr(ctx, err, "insert decision")
		} else if n == 1 {
			// Ours won: what is stored is d, with the time as the column
			// keeps it. Reading it back would cost the writer a query.
			own := *d
			own.DecidedAt = fromNanos(nanos(d.DecidedAt))
			stored = &own
			return nil
		}
		stored, err = loadDecision(ctx, tx, d.OrderID, d.EventType)
		if err == nil && stored == nil {
			err = orderflow.Errorf(orderflow.EInternal, "sqlite: decision for %s vanished after insert", d.OrderID)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return stored, nil
}

// decStmts are the decision store's statements, prepared once the tables
// exist: the risk engine saves one decision per order, and parsing the
// insert each time cost the writer about as much as running it.
type decStmts struct {
	insert *sql.Stmt // on the write connection, used through tx.StmtContext
}

// decisionStmts returns the prepared decision statements, preparing them the
// first time they are asked for after the tables exist; nil until then (the
// caller runs the queries unprepared, creating the tables). Preparing on the
// write pool waits for the writer to be between two commits, once.
func (s *Store) decisionStmts(ctx context.Context) *decStmts {
	if ds := s.dec.Load(); ds != nil {
		return ds
	}
	s.decMu.Lock()
	defer s.decMu.Unlock()
	if ds := s.dec.Load(); ds != nil {
		return ds
	}
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil
	}
	// Look on the read pool whether the tables exist yet, so that the
	// saves before the first one do not each wait for the writer's
	// connection to find out.
	probe, err := s.readDB.PrepareContext(ctx, qDecisionByKey)
	if err != nil { // no such table yet, or a read error the query itself will report
		return nil
	}
	probe.Close()
	insert, err := s.writeDB.PrepareContext(ctx, qInsertDecision)
	if err != nil {
		return nil
	}
	ds := &decStmts{insert: insert}
	s.dec.Store(ds)
	return ds
}

// querier is what both the read pool and a write transaction offer.
type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// loadDecision returns the stored decision for (orderID, et), or nil.
func loadDecision(ctx context.Context, q querier, orderID string, et orderflow.EventType) (*orderflow.RiskDecision, error) {
	d, _, err := scanDecision(q.QueryRowContext(ctx, qDecisionByKey, orderID, string(et)), false)
	if errors.Is(err, sql.ErrNoRows) || isNoSuchTable(err) {
		return nil, nil
	}
	if err != nil {
		return nil, dbErr(ctx, err, "read decision")
	}
	return d, nil
}

// scanDecision reads decisionCols, followed by the label when labelled.
func scanDecision(sc interface{ Scan(...any) error }, labelled bool) (*orderflow.RiskDecision, bool, error) {
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
	if err := sc.Scan(dest...); err != nil {
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
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := execCreating(ctx, tx, qUpsertLabel, orderID, fraud, nanos(s.Now())); err != nil {
			return dbErr(ctx, err, "upsert label")
		}
		return nil
	})
}

// LabelledDecisions returns up to limit (10,000 when limit <= 0) risk.decided
// decisions that have a label, oldest decision first: the training and
// evaluation set of the risk models.
func (s *Store) LabelledDecisions(ctx context.Context, limit int) ([]orderflow.LabelledDecision, error) {
	if limit <= 0 {
		limit = defaultLabelledLimit
	}
	rows, err := s.readDB.QueryContext(ctx, qLabelled, string(orderflow.EventRiskDecided), limit)
	if isNoSuchTable(err) { // nothing decided yet
		return []orderflow.LabelledDecision{}, nil
	}
	if err != nil {
		return nil, dbErr(ctx, err, "list labelled decisions")
	}
	defer rows.Close()
	out := []orderflow.LabelledDecision{}
	for rows.Next() {
		d, fraud, err := scanDecision(rows, true)
		if err != nil {
			return nil, dbErr(ctx, err, "scan labelled decision")
		}
		out = append(out, orderflow.LabelledDecision{RiskDecision: *d, Fraud: fraud})
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, err, "list labelled decisions")
	}
	return out, nil
}

// execCreating runs a write of the decision tables, creating them first
// when they do not exist yet.
func execCreating(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	res, err := tx.ExecContext(ctx, q, args...)
	if !isNoSuchTable(err) {
		return res, err
	}
	if _, err := tx.ExecContext(ctx, decisionSchema); err != nil {
		return nil, fmt.Errorf("create decision tables: %w", err)
	}
	return tx.ExecContext(ctx, q, args...)
}

// isNoSuchTable reports whether err is SQLite's "no such table": the
// decision tables have not been created in this file yet.
func isNoSuchTable(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such table")
}
