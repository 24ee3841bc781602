package redisstream

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/orderflow/orderflow"
)

// packVersion leads a packed event, batchVersion a packed batch; another
// first byte is not ours.
const (
	packVersion  = 1
	batchVersion = 2
)

// maxBatchEvents bounds the event count a batch entry may claim, so a
// damaged count cannot make the consumer allocate without limit.
const maxBatchEvents = 1 << 16

// errPacked reports a packed event that does not parse: damaged, or
// written by something else.
var errPacked = errors.New("bad packed event")

// appendPacked appends e packed into one field value: the version byte,
// the id, type and order id (each a uvarint length and the bytes), the
// creation time (varint unix nanoseconds), the outbox seq (varint, 0 for
// none), the header count and each header's name and value (length and
// bytes), and the rest is the payload. One field instead of one per
// attribute: fewer arguments for Redis to copy on publish, and a reply
// per entry with two fields for the consumer to walk.
func appendPacked(b []byte, e *orderflow.Event) []byte {
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = append(b, packVersion)
	str(e.ID)
	str(string(e.Type))
	str(e.OrderID)
	b = binary.AppendVarint(b, e.CreatedAt.UnixNano())
	b = binary.AppendVarint(b, e.Seq)
	b = binary.AppendUvarint(b, uint64(len(e.Headers)))
	for k, v := range e.Headers {
		str(k)
		str(v)
	}
	return append(b, e.Payload...)
}

// packedSize is an upper bound of appendPacked's output for e, to size
// a buffer.
func packedSize(e *orderflow.Event) int {
	n := 1 + 6*binary.MaxVarintLen64 + len(e.ID) + len(e.Type) + len(e.OrderID) + len(e.Payload)
	for k, v := range e.Headers {
		n += 2*binary.MaxVarintLen64 + len(k) + len(v)
	}
	return n
}

// unpack fills e from a packed value s (appendPacked). It checks every
// length against what is left: s comes off the network.
func unpack(s string, e *orderflow.Event) error {
	return unpackInto(s, e, nil)
}

// unpackInto is unpack, copying the payload into *arena when arena is not
// nil (each payload capped at its length, so appending to one cannot
// overwrite the next): the events of a batch, whose arena is sized for all
// of them, then share one allocation.
func unpackInto(s string, e *orderflow.Event, arena *[]byte) error {
	if len(s) == 0 || s[0] != packVersion {
		return errPacked
	}
	s = s[1:]
	bad := false
	uvar := func() uint64 {
		n, k := uvarintString(s)
		if k <= 0 {
			bad = true
			return 0
		}
		s = s[k:]
		return n
	}
	str := func() string {
		n := uvar()
		if bad || n > uint64(len(s)) {
			bad = true
			return ""
		}
		v := s[:n]
		s = s[n:]
		return v
	}
	e.ID = str()
	e.Type = str()
	e.OrderID = str()
	created := zigzag(uvar())
	seq := zigzag(uvar())
	nh := uvar()
	if bad || nh > uint64(len(s))/2 {
		return errPacked
	}
	e.CreatedAt = time.Unix(0, created).UTC()
	e.Seq = seq
	if nh > 0 {
		e.Headers = make(map[string]string, nh)
		for range nh {
			k := str()
			v := str()
			if bad {
				return errPacked
			}
			e.Headers[k] = v
		}
	}
	if bad {
		return errPacked
	}
	if arena == nil {
		e.Payload = []byte(s)
		return nil
	}
	at := len(*arena)
	*arena = append(*arena, s...)
	e.Payload = (*arena)[at:len(*arena):len(*arena)]
	return nil
}

// appendBatch appends the events evs[ix[0]], evs[ix[1]], … packed as one
// batch value: batchVersion, the event count, then each event packed
// after its length (appendPackedLen). unpackBatch reads it.
func appendBatch(b []byte, evs []orderflow.Event, ix []int) []byte {
	b = append(b, batchVersion)
	b = binary.AppendUvarint(b, uint64(len(ix)))
	for _, i := range ix {
		b = appendPackedLen(b, &evs[i])
	}
	return b
}

// appendPackedLen appends e packed (appendPacked) after its length, as one
// event of a batch entry. It packs in place and moves the bytes only when
// the length takes more than the byte it reserved.
func appendPackedLen(b []byte, e *orderflow.Event) []byte {
	at := len(b)
	b = append(b, 0)
	b = appendPacked(b, e)
	n := len(b) - at - 1
	if n < 0x80 {
		b[at] = byte(n)
		return b
	}
	var l [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(l[:], uint64(n))
	b = append(b, l[1:k]...) // room for the longer length
	copy(b[at+k:], b[at+1:at+1+n])
	copy(b[at:], l[:k])
	return b
}

// unpackBatch returns the events of a packed batch (batchVersion, the
// event count, then each event's length and packed bytes), checking every
// length against what is left: s comes off the network. On error it
// returns the events that did unpack.
func unpackBatch(s string) ([]orderflow.Event, error) {
	if len(s) == 0 || s[0] != batchVersion {
		return nil, errPacked
	}
	s = s[1:]
	n, k := uvarintString(s)
	// Every event takes at least two bytes: a length and a version.
	if k <= 0 || n == 0 || n > maxBatchEvents || n > uint64(len(s)-k)/2 {
		return nil, errPacked
	}
	s = s[k:]
	evs := make([]orderflow.Event, 0, n)
	arena := make([]byte, 0, len(s)) // every payload fits: each is part of s
	for range n {
		l, k := uvarintString(s)
		if k <= 0 || l > uint64(len(s)-k) {
			return evs, errPacked
		}
		var e orderflow.Event
		if err := unpackInto(s[k:k+int(l)], &e, &arena); err != nil {
			return evs, err
		}
		evs = append(evs, e)
		s = s[k+int(l):]
	}
	if len(s) != 0 {
		return evs, errPacked
	}
	return evs, nil
}

// uvarintString is binary.Uvarint over a string, without copying it.
func uvarintString(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		c := s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -(i + 1) // overflow
			}
			return x | uint64(c)<<shift, i + 1
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

// zigzag turns the uvarint of a varint (binary.AppendVarint) back into it.
func zigzag(u uint64) int64 {
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}
