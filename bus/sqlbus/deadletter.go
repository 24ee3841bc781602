package sqlbus

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/orderflow/orderflow"
)

// maxErrorLen bounds the last error kept with a dead letter.
const maxErrorLen = 2000

// defaultDeadLetterLimit is the page DeadLetters returns when asked for none.
const defaultDeadLetterLimit = 100

// deadLetter copies e into the dead letters and acknowledges it, in one
// write, so an event is never both dead-lettered and still pending.
func (g *group) deadLetter(e *entry, attempts int, cause error) error {
	headers := "{}"
	if len(e.ev.Headers) > 0 {
		b, err := json.Marshal(e.ev.Headers)
		if err != nil {
			return fmt.Errorf("encode headers: %w", err)
		}
		headers = string(b)
	}
	msg := cause.Error()
	if len(msg) > maxErrorLen {
		msg = msg[:maxErrorLen]
	}
	payload := e.ev.Payload
	if payload == nil {
		payload = []byte{}
	}
	ctx, cancel := writeCtx()
	defer cancel()
	err := g.b.st.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO bus_dead_letters (grp, seq, event_id, type, order_id, payload,
			headers, created_at, attempts, last_error, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			g.name, e.ev.Seq, e.ev.ID, e.ev.Type, e.ev.OrderID, payload, headers, e.ev.CreatedAt.UnixNano(),
			attempts, msg, time.Now().UnixNano())
		if err != nil {
			return fmt.Errorf("insert dead letter: %w", err)
		}
		if e.redriveID > 0 {
			_, err = tx.ExecContext(ctx, `DELETE FROM bus_redrive WHERE id = ?`, e.redriveID)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO bus_deliveries (grp, seq, attempts, acked) VALUES (?, ?, ?, 1)
				ON CONFLICT (grp, seq) DO UPDATE SET attempts = excluded.attempts, acked = 1`, g.name, e.ev.Seq, attempts)
		}
		if err != nil {
			return fmt.Errorf("ack dead letter: %w", err)
		}
		return nil
	})
	if err == nil {
		g.b.stats.deadLettered.Add(1)
	}
	return err
}

// DeadLetters returns up to limit (100 when limit <= 0) dead letters of
// every group, oldest first.
func (b *Bus) DeadLetters(ctx context.Context, limit int) ([]orderflow.DeadLetter, error) {
	if limit <= 0 {
		limit = defaultDeadLetterLimit
	}
	if err := b.ensureSchema(ctx); err != nil {
		return nil, err
	}
	rows, err := b.st.ReadDB().QueryContext(ctx, `SELECT id, grp, seq, event_id, type, order_id, payload, headers,
		created_at, attempts, last_error, at FROM bus_dead_letters ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, readErr(ctx, err, "list dead letters")
	}
	defer rows.Close()
	out := []orderflow.DeadLetter{}
	for rows.Next() {
		var (
			d               orderflow.DeadLetter
			id, created, at int64
			headers         string
		)
		if err := rows.Scan(&id, &d.Group, &d.Event.Seq, &d.Event.ID, &d.Event.Type, &d.Event.OrderID, &d.Event.Payload,
			&headers, &created, &d.Attempts, &d.LastError, &at); err != nil {
			return nil, readErr(ctx, err, "scan dead letter")
		}
		if headers != "" && headers != "{}" {
			if err := json.Unmarshal([]byte(headers), &d.Event.Headers); err != nil {
				return nil, readErr(ctx, err, "decode dead letter headers")
			}
		}
		d.ID = strconv.FormatInt(id, 10)
		d.Event.CreatedAt, d.At = time.Unix(0, created).UTC(), time.Unix(0, at).UTC()
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, err, "list dead letters")
	}
	return out, nil
}

// Redrive sends dead letter id back to its group, which receives it again
// (and only it: other groups are not affected) with Attempt starting at 1,
// and removes it from the dead letters, in one write. An unknown id is
// not_found. A running consumer of the group picks it up at once.
func (b *Bus) Redrive(ctx context.Context, id string) error {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return orderflow.Errorf(orderflow.ENotFound, "no dead letter %q", id)
	}
	if err := b.ensureSchema(ctx); err != nil {
		return err
	}
	err = b.st.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO bus_redrive (grp, seq, event_id, type, order_id, payload,
			headers, created_at) SELECT grp, seq, event_id, type, order_id, payload, headers, created_at
			FROM bus_dead_letters WHERE id = ?`, n)
		if err != nil {
			return fmt.Errorf("sqlbus: redrive: %w", err)
		}
		if k, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlbus: redrive: %w", err)
		} else if k == 0 {
			return orderflow.Errorf(orderflow.ENotFound, "no dead letter %q", id)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM bus_dead_letters WHERE id = ?`, n); err != nil {
			return fmt.Errorf("sqlbus: redrive: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.redrives.Add(1) // after the commit: the poller that sees it finds the row
	b.Notify()
	return nil
}

// readErr codes a failed read: the caller's deadline is deadline_exceeded,
// anything else internal.
func readErr(ctx context.Context, err error, what string) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return orderflow.Wrap(orderflow.EDeadlineExceeded, err, "sqlbus: %s", what)
	}
	return orderflow.Wrap(orderflow.EInternal, err, "sqlbus: %s", what)
}
