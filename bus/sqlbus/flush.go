package sqlbus

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// flusher writes acks and failure counts: it waits for the first one, lets
// more gather for FlushInterval, and writes them all in one transaction.
// A failed write is retried with the next batch; what the group stops with is
// written by stop.
func (g *group) flusher() {
	defer g.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		select {
		case <-g.quit:
			return
		case <-g.pending:
		}
		timer.Reset(g.b.cfg.FlushInterval)
		select {
		case <-g.quit:
			return
		case <-timer.C:
		}
		ctx, cancel := writeCtx()
		if err := g.flush(ctx); err != nil {
			g.warn("ack write failed; retrying", err)
			g.poke(g.pending)
		}
		cancel()
	}
}

// qRecordAttempts raises the delivery counts of a group's events, given as
// a JSON array of [seq, attempts] pairs; a count never goes down.
const qRecordAttempts = `INSERT INTO bus_deliveries (grp, seq, attempts)
	SELECT ?, value ->> 0, value ->> 1 FROM json_each(?) WHERE true
	ON CONFLICT (grp, seq) DO UPDATE SET attempts = max(attempts, excluded.attempts)`

// batch is one flush: what the group acknowledged or failed since the last.
type batch struct {
	cursor     int64
	moveCursor bool
	acks       []int64 // outbox seqs acked above cursor
	redriveAck []int64 // bus_redrive ids acked
	failures   []failure
}

// failure is a failed-delivery count to persist, copied out of its entry
// under the group's lock (the entry changes once it is acked).
type failure struct {
	e              *entry
	seq, redriveID int64
	n              int
}

func (b *batch) empty() bool {
	return !b.moveCursor && len(b.acks) == 0 && len(b.redriveAck) == 0 && len(b.failures) == 0
}

// flush advances the cursor over the acknowledged prefix and writes it with
// the out-of-order acks and the failure counts, in one Write. On failure the
// batch goes back to the group, to be written with the next one: every part
// of it is idempotent, so a write whose outcome is unknown may be repeated.
func (g *group) flush(ctx context.Context) error {
	b := g.take()
	if b.empty() {
		return nil
	}
	err := g.b.st.Write(ctx, func(ctx context.Context, tx *sql.Tx) error { return g.write(ctx, tx, b) })
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.acks = append(g.acks, b.acks...)
		g.redriveAck = append(g.redriveAck, b.redriveAck...)
		for _, f := range b.failures {
			if g.failures[f.e] < f.n && !f.e.acked {
				g.failures[f.e] = f.n
			}
		}
		return err
	}
	g.b.stats.ackWrites.Add(1)
	g.durable = max(g.durable, b.cursor)
	return nil
}

// take advances the in-memory cursor and moves what is to be written out of
// the group.
func (g *group) take() *batch {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := 0
	for i < len(g.window) && g.window[i].acked {
		i++
	}
	if i == len(g.window) {
		// Everything read is acked; seqs between the reads do not exist,
		// because the outbox commits in seq order.
		g.cursor = max(g.cursor, g.readPos)
	} else {
		g.cursor = max(g.cursor, g.window[i].ev.Seq-1)
	}
	clear(g.window[:i])
	g.window = g.window[i:]
	b := &batch{cursor: g.cursor, moveCursor: g.cursor > g.durable, redriveAck: g.redriveAck}
	for e, n := range g.failures {
		b.failures = append(b.failures, failure{e: e, seq: e.ev.Seq, redriveID: e.redriveID, n: n})
	}
	for _, seq := range g.acks {
		if seq > g.cursor {
			b.acks = append(b.acks, seq)
		}
	}
	g.acks, g.redriveAck, g.failures = nil, nil, map[*entry]int{}
	return b
}

// write runs one batch inside the store's transaction. Arrays travel as
// one JSON argument each, so a batch is a handful of statements whatever its
// size.
func (g *group) write(ctx context.Context, tx *sql.Tx, b *batch) error {
	type pair [2]int64
	var outboxFails []pair
	for _, f := range b.failures {
		if f.redriveID > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE bus_redrive SET attempts = max(attempts, ?) WHERE id = ?`,
				f.n, f.redriveID); err != nil {
				return fmt.Errorf("record redrive attempts: %w", err)
			}
		} else if f.seq > b.cursor {
			outboxFails = append(outboxFails, pair{f.seq, int64(f.n)})
		}
	}
	if len(outboxFails) > 0 {
		_, err := tx.ExecContext(ctx, qRecordAttempts, g.name, jsonArg(outboxFails))
		if err != nil {
			return fmt.Errorf("record attempts: %w", err)
		}
	}
	if len(b.acks) > 0 {
		_, err := tx.ExecContext(ctx, `INSERT INTO bus_deliveries (grp, seq, acked)
			SELECT ?, value, 1 FROM json_each(?) WHERE true
			ON CONFLICT (grp, seq) DO UPDATE SET acked = 1`, g.name, jsonArg(b.acks))
		if err != nil {
			return fmt.Errorf("record acks: %w", err)
		}
	}
	if len(b.redriveAck) > 0 {
		_, err := tx.ExecContext(ctx, `DELETE FROM bus_redrive WHERE id IN (SELECT value FROM json_each(?))`,
			jsonArg(b.redriveAck))
		if err != nil {
			return fmt.Errorf("ack redriven: %w", err)
		}
	}
	if b.moveCursor {
		if _, err := tx.ExecContext(ctx, `UPDATE bus_cursors SET seq = max(seq, ?), updated_at = ? WHERE grp = ?`,
			b.cursor, time.Now().UnixNano(), g.name); err != nil {
			return fmt.Errorf("advance cursor: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM bus_deliveries WHERE grp = ? AND seq <= ?`,
			g.name, b.cursor); err != nil {
			return fmt.Errorf("forget acked deliveries: %w", err)
		}
	}
	return nil
}

// jsonArg encodes ids (numbers, or arrays of numbers) as a JSON array.
func jsonArg(v any) string {
	b, err := json.Marshal(v)
	if err != nil { // numbers always encode
		panic(err)
	}
	return string(b)
}
