package redisstream

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/redis/go-redis/v9"
)

// FuzzDecode feeds decode entries as they may come off the wire, damaged
// or foreign: it must never panic, and what it accepts must survive an
// encode/decode round trip.
func FuzzDecode(f *testing.F) {
	f.Add("1700000000000-0", "evt_1", "ord_1", "order.created", `{"a":1}`, "1700000000000000000", "traceparent", "00-ab-cd-01", "")
	f.Add("1-1", "", "ord", "t", "", "x", "", "", "")
	f.Add("bad", "evt", "ord", "", "\x00\xff", "-5", "h", "v", "risk")
	f.Add("0-0", "evt", "", "t", "{}", "99999999999999999999", "", "", "")
	f.Fuzz(func(t *testing.T, entryID, id, order, typ, payload, created, hk, hv, only string) {
		vals := map[string]any{fID: id, fOrder: order, fType: typ, fPayload: payload, fCreated: created}
		if hk != "" {
			vals[fHeader+hk] = hv
		}
		if only != "" {
			vals[fOnly] = only
		}
		e, gotOnly, err := decodeOne(redis.XMessage{ID: entryID, Values: vals})
		if err != nil {
			return
		}
		// Redis returns every field as a string.
		enc := fields(&e, gotOnly)
		back := map[string]any{}
		for i := 0; i < len(enc); i += 2 {
			switch v := enc[i+1].(type) {
			case []byte:
				back[enc[i].(string)] = string(v)
			default:
				back[enc[i].(string)] = v
			}
		}
		e2, only2, err := decodeOne(redis.XMessage{ID: entryID, Values: back})
		if err != nil || only2 != gotOnly || !sameEvent(e, e2) {
			t.Fatalf("round trip: %+v %q → %+v %q, %v", e, gotOnly, e2, only2, err)
		}
	})
}

// FuzzUnpack feeds unpack arbitrary packed values: it must never panic,
// and what it accepts must pack back to an event that unpacks the same.
func FuzzUnpack(f *testing.F) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	for _, e := range []orderflow.Event{
		{ID: "evt_1", Type: "order.created", OrderID: "ord_1", Payload: []byte(`{"a":1}`), CreatedAt: created, Seq: 7,
			Headers: map[string]string{"traceparent": "00-ab-cd-01"}},
		{ID: "e", OrderID: "o", CreatedAt: created, Seq: -1},
	} {
		f.Add(string(appendPacked(nil, &e)))
	}
	f.Add("")
	f.Add("\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")
	f.Add("\x01\x00\x00\x00\x00\x00\x7f")
	f.Fuzz(func(t *testing.T, s string) {
		var e orderflow.Event
		if unpack(s, &e) != nil {
			return
		}
		var e2 orderflow.Event
		if err := unpack(string(appendPacked(nil, &e)), &e2); err != nil || !sameEvent(e, e2) {
			t.Fatalf("round trip: %+v → %+v, %v", e, e2, err)
		}
	})
}

// FuzzUnpackBatch feeds unpackBatch arbitrary batch values: it must never
// panic, never return more events than the value can hold, and what it
// accepts must pack back (as Publish packs a batch) to the same events.
func FuzzUnpackBatch(f *testing.F) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	evs := []orderflow.Event{
		{ID: "evt_1", Type: "order.created", OrderID: "ord_1", Payload: []byte(`{"a":1}`), CreatedAt: created, Seq: 7,
			Headers: map[string]string{"traceparent": "00-ab-cd-01"}},
		{ID: "e", OrderID: "o", CreatedAt: created, Payload: make([]byte, 300)},
	}
	f.Add(string(packBatch(evs)))
	f.Add(string(packBatch(evs[:1])))
	f.Add("\x02")
	f.Add("\x02\x02\x00\x00")
	f.Add("\x02\xff\xff\xff\xff\x0f")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := unpackBatch(s)
		if len(got) > len(s)/2 {
			t.Fatalf("%d events out of %d bytes", len(got), len(s))
		}
		if err != nil {
			return
		}
		back, err := unpackBatch(string(packBatch(got)))
		if err != nil || len(back) != len(got) {
			t.Fatalf("round trip: %d events → %d, %v", len(got), len(back), err)
		}
		for i := range got {
			if !sameEvent(got[i], back[i]) {
				t.Fatalf("round trip of event %d: %+v → %+v", i, got[i], back[i])
			}
		}
	})
}

// packBatch packs all of evs as Publish packs a batch entry's value.
func packBatch(evs []orderflow.Event) []byte {
	ix := make([]int, len(evs))
	for i := range ix {
		ix[i] = i
	}
	return appendBatch(nil, evs, ix)
}

// TestPackedLenAnySize: appendPackedLen moves the packed bytes when the
// length needs more than one byte, and every size unpacks back.
func TestPackedLenAnySize(t *testing.T) {
	for _, size := range []int{0, 1, 90, 100, 127, 128, 200, 16000, 16384, 70000, 3 << 20} {
		evs := []orderflow.Event{
			{ID: "a", OrderID: "o", Payload: bytes.Repeat([]byte{'x'}, size), CreatedAt: time.Unix(0, 5).UTC()},
			{ID: "b", OrderID: "o", Payload: []byte("tail"), CreatedAt: time.Unix(0, 6).UTC()},
		}
		got, err := unpackBatch(string(packBatch(evs)))
		if err != nil || len(got) != 2 || !sameEvent(got[0], evs[0]) || !sameEvent(got[1], evs[1]) {
			t.Fatalf("payload of %d bytes: unpacked %d events, %v", size, len(got), err)
		}
	}
}

func sameEvent(a, b orderflow.Event) bool {
	return a.ID == b.ID && a.Type == b.Type && a.OrderID == b.OrderID && string(a.Payload) == string(b.Payload) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.Seq == b.Seq && reflect.DeepEqual(a.Headers, b.Headers)
}

func TestDecodeFields(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	for _, tc := range []struct {
		name    string
		ev      orderflow.Event
		only    string
		wantSeq int64
	}{
		{"OutboxSeqKept", orderflow.Event{ID: "e", OrderID: "o", Seq: 42, CreatedAt: created}, "", 42},
		{"SeqFromEntryID", orderflow.Event{ID: "e", OrderID: "o", CreatedAt: created}, "", 1700000000000*1_000_000 + 3},
		{"HeadersAndOnly", orderflow.Event{ID: "e", OrderID: "o", CreatedAt: created,
			Headers: map[string]string{"traceparent": "00-1-2-01", "tracestate": "x=y"}}, "risk", 1700000000000*1_000_000 + 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := fields(&tc.ev, tc.only)
			vals := map[string]any{}
			for i := 0; i < len(enc); i += 2 {
				if b, ok := enc[i+1].([]byte); ok {
					vals[enc[i].(string)] = string(b)
				} else {
					vals[enc[i].(string)] = enc[i+1]
				}
			}
			got, only, err := decodeOne(redis.XMessage{ID: "1700000000000-3", Values: vals})
			want := tc.ev
			want.Seq = tc.wantSeq
			if want.Payload == nil {
				want.Payload = []byte{}
			}
			if err != nil || only != tc.only || !sameEvent(got, want) {
				t.Errorf("decode = %+v, %q, %v; want %+v, %q", got, only, err, want, tc.only)
			}
		})
	}
}

// TestDecodeBatch: a batch entry decodes to its events in order, each
// keeping its outbox seq or taking the entry's; a damaged batch, or one
// with an event that has no order id, is an error.
func TestDecodeBatch(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	good := []orderflow.Event{
		{ID: "a", OrderID: "o1", Seq: 7, CreatedAt: created, Payload: []byte("x")},
		{ID: "b", OrderID: "o2", CreatedAt: created, Payload: []byte("y")},
	}
	noOrder := []orderflow.Event{good[0], {ID: "c", CreatedAt: created}}
	entry := func(v []byte) redis.XMessage {
		return redis.XMessage{ID: "1700000000000-3", Values: map[string]any{fBatch: string(v)}}
	}
	evs, _, err := decode(entry(packBatch(good)))
	if err != nil || len(evs) != 2 || evs[0].ID != "a" || evs[0].Seq != 7 || evs[1].ID != "b" ||
		evs[1].Seq != 1700000000000*1_000_000+3 || string(evs[1].Payload) != "y" {
		t.Fatalf("decode = %+v, %v; want a (seq 7) then b (the entry's seq)", evs, err)
	}
	whole := packBatch(good)
	for name, v := range map[string][]byte{
		"truncated":      whole[:len(whole)-1],
		"trailing bytes": append(slices.Clone(whole), 0),
		"no order id":    packBatch(noOrder),
		"empty":          {batchVersion, 0},
	} {
		if _, _, err := decode(entry(v)); err == nil {
			t.Errorf("%s: decode accepted it", name)
		}
	}
}
