package redisstream

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/redis/go-redis/v9"
)

// Field names of a stream entry. Headers travel as one field each, "h:" and
// the header name, so a W3C traceparent crosses the bus without a JSON
// round trip.
const (
	fID      = "id"
	fType    = "type"
	fOrder   = "order"
	fPayload = "payload"
	fCreated = "created" // unix nanoseconds
	fSeq     = "seq"     // the outbox seq, when the publisher had one
	fOnly    = "only"    // set by Redrive: only this group handles the entry
	fFirst   = "first"   // set by publishScript: the event id's first publication
	fEvent   = "e"       // the whole event packed (appendPacked)
	fHeader  = "h:"
)

// maxPipeline bounds the XADDs of one pipeline, so a huge Publish does not
// build one huge request.
const maxPipeline = 512

// Publish appends evs to their partitions' streams, one script call per
// partition (pipelined), in order, so one order's events keep their order. It returns once Redis
// has them all; on error some may have been appended, and publishing again
// is safe: a consumer group acknowledges an event id it already handled
// without calling its handler (within Config.DedupTTL). The outbox relay
// calls it and marks its rows sent only after it returned nil.
func (b *Bus) Publish(ctx context.Context, evs []orderflow.Event) error {
	for len(evs) > 0 {
		n := min(len(evs), maxPipeline)
		if err := b.publish(ctx, evs[:n]); err != nil {
			return err
		}
		evs = evs[n:]
	}
	return nil
}

func (b *Bus) publish(ctx context.Context, evs []orderflow.Event) error {
	for i := range evs {
		if evs[i].ID == "" || evs[i].OrderID == "" {
			return orderflow.Invalid("event", "event %d needs an id and an order id", i)
		}
	}
	if len(evs) > scriptMax {
		return b.publishPlain(ctx, evs)
	}
	// One publishScript call for all (on a cluster: one per partition,
	// pipelined); either keeps each partition's events in publish order,
	// which is all an order needs (one order, one partition). Few, large
	// calls: each call costs Redis a fixed set-up.
	now := time.Now()
	_, _, ttl := b.pubKeys(0, now)
	type call struct {
		keys []string
		args []any
	}
	var calls []*call
	byPart := make([]*call, len(b.streams))
	slot := make([]int, len(b.streams)) // the partition's key pair in its call
	for i := range evs {
		e := &evs[i]
		p := b.Partition(e.OrderID)
		cl := byPart[p]
		if cl == nil {
			if b.cluster || len(calls) == 0 {
				cl = &call{args: append(make([]any, 0, 1+18*len(evs)), int64(ttl/time.Second))}
				calls = append(calls, cl)
			} else {
				cl = calls[0]
			}
			byPart[p] = cl
			slot[p] = len(cl.keys) / 3
			cur, prev, _ := b.pubKeys(p, now)
			cl.keys = append(cl.keys, b.streams[p], cur, prev)
		}
		at := len(cl.args)
		cl.args = appendFields(append(cl.args, slot[p], e.ID, 0), e, "")
		cl.args = append(cl.args, fFirst, "0")
		cl.args[at+2] = len(cl.args) - at - 3
	}
	var cmds []*redis.Cmd
	run := func(eval bool) error {
		pipe := b.rdb.Pipeline()
		cmds = cmds[:0]
		for _, cl := range calls {
			if eval {
				cmds = append(cmds, publishScript.Eval(ctx, pipe, cl.keys, cl.args...))
			} else {
				cmds = append(cmds, publishScript.EvalSha(ctx, pipe, cl.keys, cl.args...))
			}
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	err := run(false)
	if err != nil {
		// Partitions whose call found no cached script did nothing: send
		// them the body (which caches it again); others failed for real.
		var again []*call
		for i, c := range cmds {
			if isNoScript(c.Err()) {
				again = append(again, calls[i])
			} else if c.Err() != nil {
				return redisErr(ctx, c.Err(), "publish")
			}
		}
		if len(again) == 0 {
			return redisErr(ctx, err, "publish")
		}
		calls = again
		err = run(true)
	}
	if err != nil {
		return publishErr(ctx, cmds, err)
	}
	return nil
}

// scriptMax is the largest Publish chunk that goes through publishScript.
// The script saves the consumers a round trip before the handler, which
// is what an idle bus's latency is made of; but XADD inside Lua costs
// Redis several µs more per entry than a pipelined XADD, and a large
// chunk means a busy publisher, whose consumers read large batches and
// pay the check's round trip once per batch anyway.
const scriptMax = 16

// publishPlain appends evs with pipelined XADDs, without the "first"
// flag (their consumers check the done markers), after recording their
// ids as published: a later publication of one of them must not be
// flagged first. The SADDs precede the XADDs in the pipeline, on the
// node of their partition, so the ids are written before the entries.
func (b *Bus) publishPlain(ctx context.Context, evs []orderflow.Event) error {
	now := time.Now()
	_, _, ttl := b.pubKeys(0, now)
	ids := make([][]any, len(b.streams))
	for i := range evs {
		p := b.Partition(evs[i].OrderID)
		ids[p] = append(ids[p], evs[i].ID)
	}
	pipe := b.rdb.Pipeline()
	for p, l := range ids {
		if len(l) > 0 {
			cur, _, _ := b.pubKeys(p, now)
			pipe.SAdd(ctx, cur, l...)
			pipe.Expire(ctx, cur, ttl)
		}
	}
	for i := range evs {
		e := &evs[i]
		// XADD stream * fields…, built in one slice: XAddArgs would copy it.
		args := make([]any, 0, 3+4)
		args = append(args, "xadd", b.streams[b.Partition(e.OrderID)], "*")
		_ = pipe.Process(ctx, redis.NewStringCmd(ctx, appendFields(args, e, "")...))
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		return publishErr(ctx, cmds, err)
	}
	return nil
}

// fields encodes e as an XADD field list.
func fields(e *orderflow.Event, only string) []any {
	return appendFields(make([]any, 0, 12+2*len(e.Headers)), e, only)
}

// appendFields appends e's XADD field list to f: the packed event, and
// the group a redriven entry is for.
func appendFields(f []any, e *orderflow.Event, only string) []any {
	f = append(f, fEvent, appendPacked(make([]byte, 0, 64+len(e.Payload)), e))
	if only != "" {
		f = append(f, fOnly, only)
	}
	return f
}

// decode turns a stream entry back into an event; only is the group a
// redriven entry is meant for. An entry without an id or order id is not
// ours (or damaged) and is an error: the consumer dead-letters it.
func decode(m redis.XMessage) (e orderflow.Event, only string, err error) {
	if p, ok := m.Values[fEvent].(string); ok {
		only, _ = m.Values[fOnly].(string)
		if err := unpack(p, &e); err != nil {
			return e, only, fmt.Errorf("entry %s: %w", m.ID, err)
		}
		return finish(m.ID, e, only)
	}
	// One field per attribute: entries written before events were packed.
	for k, v := range m.Values {
		s, _ := v.(string)
		switch {
		case k == fID:
			e.ID = s
		case k == fType:
			e.Type = s
		case k == fOrder:
			e.OrderID = s
		case k == fPayload:
			e.Payload = []byte(s)
		case k == fCreated:
			n, perr := strconv.ParseInt(s, 10, 64)
			if perr != nil {
				return e, "", fmt.Errorf("entry %s: bad %s %q", m.ID, fCreated, s)
			}
			e.CreatedAt = time.Unix(0, n).UTC()
		case k == fSeq:
			e.Seq, _ = strconv.ParseInt(s, 10, 64)
		case k == fOnly:
			only = s
		case strings.HasPrefix(k, fHeader):
			if e.Headers == nil {
				e.Headers = make(map[string]string, 2)
			}
			e.Headers[k[len(fHeader):]] = s
		}
	}
	return finish(m.ID, e, only)
}

// finish completes a decoded event: the seq from the entry id when the
// publisher had none, and an error when the id or order id is missing.
func finish(entryID string, e orderflow.Event, only string) (orderflow.Event, string, error) {
	if e.Seq == 0 {
		e.Seq = entrySeq(entryID)
	}
	if e.ID == "" || e.OrderID == "" {
		return e, only, fmt.Errorf("entry %s has no event id or order id", entryID)
	}
	return e, only, nil
}

// entrySeq derives a Seq from a stream entry id (ms-seq) for events
// published without an outbox seq: it increases with the id within a
// stream, which is all Seq promises to a consumer.
func entrySeq(id string) int64 {
	ms, seq, ok := parseID(id)
	if !ok {
		return 0
	}
	return ms*1_000_000 + seq%1_000_000
}

// parseID splits a stream entry id "ms-seq".
func parseID(id string) (ms, seq int64, ok bool) {
	a, c, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseInt(a, 10, 64)
	seq, err2 := strconv.ParseInt(c, 10, 64)
	return ms, seq, err1 == nil && err2 == nil && ms >= 0 && seq >= 0
}

// publishErr is the error of a failed publish pipeline: the first
// command's own error when one failed (it says which), else the pipeline's.
func publishErr[C redis.Cmder](ctx context.Context, cmds []C, err error) error {
	for _, c := range cmds {
		if c.Err() != nil {
			return redisErr(ctx, c.Err(), "publish")
		}
	}
	return redisErr(ctx, err, "publish")
}
