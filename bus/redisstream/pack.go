package redisstream

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/orderflow/orderflow"
)

// packVersion leads a packed event; another first byte is not ours.
const packVersion = 1

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
	e.Payload = []byte(s)
	return nil
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
