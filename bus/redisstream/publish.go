package redisstream

import (
	"context"
	"encoding/binary"
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
	fBatch   = "b"       // several events packed (batchVersion, count, then each with its length)
	fHeader  = "h:"
)

// maxPipeline bounds the XADDs of one pipeline, so a huge Publish does not
// build one huge request.
const maxPipeline = 512

// maxEntryBytes bounds the packed events of one batch entry; an event
// larger than that still gets an entry of its own.
const maxEntryBytes = 256 << 10

// Publish appends evs to their partitions' streams with pipelined XADDs,
// so one order's events keep their order. The events of one call that
// share a partition are packed together, up to Config.EntryEvents per
// stream entry: Redis then stores, delivers and acknowledges one entry
// for several events, which is most of what a message costs it. It
// returns once Redis has them all; on error some may have been appended,
// and publishing again is safe: a consumer group acknowledges an event id
// it already handled without calling its handler (within Config.DedupTTL).
// The outbox relay calls it and marks its rows sent only after it
// returned nil.
func (b *Bus) Publish(ctx context.Context, evs []orderflow.Event) error {
	for i := range evs {
		if evs[i].ID == "" || evs[i].OrderID == "" {
			return orderflow.Invalid("event", "event %d needs an id and an order id", i)
		}
	}
	if len(evs) == 0 {
		return nil
	}
	// Group by partition, each group in call order: a counting sort.
	parts := make([]int, len(evs))
	sizes := make([]int, len(evs)) // packedSize walks the headers: once
	end := make([]int, len(b.streams))
	for i := range evs {
		parts[i] = b.Partition(evs[i].OrderID)
		sizes[i] = packedSize(&evs[i])
		end[parts[i]]++
	}
	for p := 1; p < len(end); p++ {
		end[p] += end[p-1]
	}
	order := make([]int, len(evs))
	for i := len(evs) - 1; i >= 0; i-- {
		end[parts[i]]--
		order[end[parts[i]]] = i
	}
	var entries [][]int // each entry's events, as indexes into evs
	for lo := 0; lo < len(order); {
		p, size := parts[order[lo]], 0
		hi := lo
		for hi < len(order) && parts[order[hi]] == p && hi-lo < b.cfg.EntryEvents {
			size += sizes[order[hi]]
			if hi > lo && size > maxEntryBytes {
				break
			}
			hi++
		}
		entries = append(entries, order[lo:hi])
		lo = hi
	}
	for len(entries) > 0 {
		n := min(len(entries), maxPipeline)
		if err := b.publish(ctx, evs, parts, sizes, entries[:n]); err != nil {
			return err
		}
		entries = entries[n:]
	}
	return nil
}

// publish sends one pipeline of XADDs, one per entry: an entry of one
// event carries it packed in field "e", an entry of several carries them
// in field "b" (appendBatch). The packed events share one buffer and the
// commands' arguments one slice: a publisher's allocations are per call,
// not per event, except the commands themselves.
func (b *Bus) publish(ctx context.Context, evs []orderflow.Event, parts, sizes []int, entries [][]int) error {
	size := 0
	for _, ix := range entries {
		for _, i := range ix {
			size += sizes[i] + binary.MaxVarintLen64
		}
		size += 1 + binary.MaxVarintLen64
	}
	buf := make([]byte, 0, size)
	const perEntry = 5 // xadd, stream, *, field, value
	args := make([]any, 0, perEntry*len(entries))
	pipe := b.rdb.Pipeline()
	for _, ix := range entries {
		at := len(buf)
		field := fEvent
		if len(ix) == 1 {
			buf = appendPacked(buf, &evs[ix[0]])
		} else {
			field = fBatch
			buf = appendBatch(buf, evs, ix)
		}
		a := len(args)
		args = append(args, b.xadd[parts[ix[0]]]...)
		// Earlier entries keep their bytes if buf grows: they point into
		// the old array, which still holds them.
		args = append(args, field, buf[at:len(buf):len(buf)])
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

// decode turns a stream entry back into its events, in publish order;
// only is the group a redriven entry is meant for. An entry that does not
// parse, or whose event has no id or order id, is not ours (or damaged)
// and is an error, returned with what did decode: the consumer
// dead-letters it.
func decode(m redis.XMessage) (evs []orderflow.Event, only string, err error) {
	only, _ = m.Values[fOnly].(string)
	if p, ok := m.Values[fBatch].(string); ok {
		evs, err = unpackBatch(p)
		if err != nil {
			return evs, only, fmt.Errorf("entry %s: %w", m.ID, err)
		}
		seq := int64(-1) // the entry's, derived once if an event has none
		for i := range evs {
			e := &evs[i]
			if e.Seq == 0 {
				if seq < 0 {
					seq = entrySeq(m.ID)
				}
				e.Seq = seq
			}
			if e.ID == "" || e.OrderID == "" {
				return evs, only, fmt.Errorf("entry %s: event %d has no event id or order id", m.ID, i)
			}
		}
		return evs, only, nil
	}
	e, only, err := decodeOne(m)
	return []orderflow.Event{e}, only, err
}

// decodeOne decodes an entry of one event.
func decodeOne(m redis.XMessage) (e orderflow.Event, only string, err error) {
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
// published without an outbox seq: it grows with the id within a stream
// (the events of one batch entry share it), which is all Seq promises to
// a consumer.
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
