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
	fEvent   = "e"       // the whole event packed (appendPacked)
	fHeader  = "h:"
)

// maxPipeline bounds the XADDs of one pipeline, so a huge Publish does not
// build one huge request.
const maxPipeline = 512

// Publish appends evs to their partitions' streams with pipelined XADDs,
// in order, so one order's events keep their order. It returns once Redis
// has them all; on error some may have been appended, and publishing again
// is safe: a consumer group acknowledges an event id it already handled
// without calling its handler (within Config.DedupTTL). The outbox relay
// calls it and marks its rows sent only after it returned nil.
func (b *Bus) Publish(ctx context.Context, evs []orderflow.Event) error {
	for i := range evs {
		if evs[i].ID == "" || evs[i].OrderID == "" {
			return orderflow.Invalid("event", "event %d needs an id and an order id", i)
		}
	}
	for len(evs) > 0 {
		n := min(len(evs), maxPipeline)
		if err := b.publish(ctx, evs[:n]); err != nil {
			return err
		}
		evs = evs[n:]
	}
	return nil
}

// publish sends one pipeline of XADDs. The packed events share one
// buffer and the commands' arguments one slice: a publisher's allocations
// are per call, not per event, except the command itself.
func (b *Bus) publish(ctx context.Context, evs []orderflow.Event) error {
	size := 0
	for i := range evs {
		size += packedSize(&evs[i])
	}
	buf := make([]byte, 0, size)
	const perEvent = 5 // xadd, stream, *, field, value
	args := make([]any, 0, perEvent*len(evs))
	pipe := b.rdb.Pipeline()
	for i := range evs {
		e := &evs[i]
		at := len(buf)
		// Earlier events keep their bytes if buf grows: they point into
		// the old array, which still holds them.
		buf = appendPacked(buf, e)
		a := len(args)
		args = append(args, b.xadd[b.Partition(e.OrderID)]...)
		args = append(args, fEvent, buf[at:len(buf):len(buf)])
		_ = pipe.Process(ctx, redis.NewStringCmd(ctx, args[a:len(args):len(args)]...))
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		return publishErr(ctx, cmds, err)
	}
	return nil
}

// fields encodes e as an XADD field list: the packed event, and the group
// a redriven entry is for. Publish packs into one buffer per call instead;
// a dead letter carries these fields.
func fields(e *orderflow.Event, only string) []any {
	f := []any{fEvent, appendPacked(make([]byte, 0, packedSize(e)), e)}
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
