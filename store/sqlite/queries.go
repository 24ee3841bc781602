package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// The store's fixed statements. They are prepared once at Open, on the write
// connection and on the read pool: the pure Go SQLite spends about as long
// parsing a small statement as running it, and the writer, which runs every
// write of the process one after another, is where that time adds up.
const (
	qSavepoint  = `SAVEPOINT op`
	qRollbackTo = `ROLLBACK TO op`
	qRelease    = `RELEASE op`
	// The apply that RecordAndApplyCallback nests inside its write's
	// savepoint, so a failed apply leaves the record in place.
	qSavepointApply  = `SAVEPOINT apply`
	qRollbackToApply = `ROLLBACK TO apply`
	qReleaseApply    = `RELEASE apply`
	qOrderByID       = `SELECT ` + orderCols + ` FROM orders WHERE id = ?`
	// qOrderStateByID reads what applying a callback reads and writes: no
	// items to decode, no columns the state machine never looks at.
	qOrderStateByID = `SELECT status, version, risk_decision, risk_score, risk_model_version, risk_decided_at,
		updated_at FROM orders WHERE id = ?`
	qInsertOrder = `INSERT INTO orders (` + orderCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qUpdateOrder = `UPDATE orders SET status = ?, version = ?, risk_decision = ?, risk_score = ?,
		risk_model_version = ?, risk_decided_at = ?, updated_at = ? WHERE id = ? AND version = ?`
	qInsertEvent = `INSERT INTO outbox (id, type, order_id, payload, headers, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`
	qInsertTransition = `INSERT INTO transitions (order_id, from_status, to_status, cause, version, at)
		VALUES (?, ?, ?, ?, ?, ?)`
	qTransitionsOf = `SELECT from_status, to_status, cause, version, at FROM transitions
		WHERE order_id = ? ORDER BY id`
	qKeyByKey  = `SELECT request_hash, response, expires_at FROM idempotency_keys WHERE key = ?`
	qDeleteKey = `DELETE FROM idempotency_keys WHERE key = ?`
	qInsertKey = `INSERT INTO idempotency_keys (key, request_hash, order_id, response, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`
	qPruneKeys = `DELETE FROM idempotency_keys WHERE expires_at < ?`
	// qInsertCallback inserts if the key is free; the foreign key on order_id
	// turns an unknown order into a constraint error, so the common case is
	// one statement.
	qInsertCallback = `INSERT INTO inbox (order_id, event_type, event_id, decision, score, model_version,
		decided_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id, event_type) DO NOTHING`
	qCallbackByKey   = `SELECT ` + inboxCols + ` FROM inbox WHERE order_id = ? AND event_type = ?`
	qCallbacksOf     = `SELECT ` + inboxCols + ` FROM inbox WHERE order_id = ? ORDER BY seq`
	qUnappliedOf     = `SELECT ` + inboxCols + ` FROM inbox WHERE order_id = ? AND outcome IS NULL ORDER BY seq`
	qCountUnapplied  = `SELECT count(*) FROM inbox WHERE order_id = ? AND outcome IS NULL`
	qSettle          = `UPDATE inbox SET outcome = ?, applied_at = ? WHERE seq = ?`
	qUnappliedOrders = `SELECT order_id FROM inbox WHERE outcome IS NULL
		GROUP BY order_id ORDER BY min(seq) LIMIT ?`
)

var (
	writeQueries = []string{qSavepoint, qRollbackTo, qRelease, qSavepointApply, qRollbackToApply, qReleaseApply, qOrderByID, qOrderStateByID, qInsertOrder, qUpdateOrder,
		qInsertEvent, qInsertTransition, qKeyByKey, qDeleteKey, qInsertKey, qPruneKeys, qInsertCallback,
		qCallbackByKey, qUnappliedOf, qSettle}
	readQueries = []string{qOrderByID, qTransitionsOf, qCallbackByKey, qCallbacksOf, qCountUnapplied, qUnappliedOrders}
)

// stmts are statements prepared on one *sql.DB.
type stmts map[string]*sql.Stmt

func prepare(ctx context.Context, db *sql.DB, queries []string) (stmts, error) {
	m := make(stmts, len(queries))
	for _, q := range queries {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("prepare %.40q: %w", q, err)
		}
		m[q] = st
	}
	return m, nil
}

func (m stmts) close() {
	for _, st := range m {
		st.Close()
	}
}

// runner runs statements on the write transaction or on the read pool (or a
// read transaction), through the prepared statement for the query when there
// is one. Dynamic queries (the Orders filter) are run as given.
type runner struct {
	db    *sql.DB
	tx    *sql.Tx // nil: run on db
	stmts stmts
	// bound, on the writer's transaction, holds the statements already
	// bound to it, shared by every write of the batch.
	bound stmts
}

func (r runner) stmt(ctx context.Context, q string) *sql.Stmt {
	st := r.stmts[q]
	if st == nil || r.tx == nil {
		return st
	}
	if b := r.bound[q]; b != nil {
		return b
	}
	// The write pool has a single connection, the one the statement was
	// prepared on, so database/sql hands back the prepared driver statement
	// instead of preparing it again. The wrapper it makes is kept for the
	// rest of the transaction: a batch runs each statement many times, and
	// making (and, at COMMIT, closing) one wrapper per run cost the writer
	// ~2 % of serve's CPU.
	b := r.tx.StmtContext(ctx, st)
	if r.bound != nil {
		r.bound[q] = b
	}
	return b
}

// ExecContext runs a statement that returns no rows.
func (r runner) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := r.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	if r.tx != nil {
		return r.tx.ExecContext(ctx, q, args...)
	}
	return r.db.ExecContext(ctx, q, args...)
}

// QueryContext runs a query.
func (r runner) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := r.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	if r.tx != nil {
		return r.tx.QueryContext(ctx, q, args...)
	}
	return r.db.QueryContext(ctx, q, args...)
}

// QueryRowContext runs a query expected to return at most one row.
func (r runner) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := r.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	if r.tx != nil {
		return r.tx.QueryRowContext(ctx, q, args...)
	}
	return r.db.QueryRowContext(ctx, q, args...)
}

// w returns the runner for the write transaction tx. Only the writer
// goroutine calls it (from commit and the write functions it runs), so the
// batch's bound statements need no lock.
func (s *Store) w(tx *sql.Tx) runner {
	r := runner{db: s.writeDB, tx: tx, stmts: s.wstmts}
	if tx == s.batchTx {
		r.bound = s.batchStmts
	}
	return r
}

// r returns the runner for the read pool.
func (s *Store) r() runner { return runner{db: s.readDB, stmts: s.rstmts} }

// rtx returns the runner for a read transaction tx.
func (s *Store) rtx(tx *sql.Tx) runner { return runner{db: s.readDB, tx: tx, stmts: s.rstmts} }
