package order

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// crockford is Crockford's base32 alphabet: no I, L, O or U, so ids survive
// being read aloud or copied by hand, and its order matches byte order, so
// ids sort as their timestamps do.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idGen makes 26-character ids in the ULID layout: 48 bits of milliseconds
// since the epoch, then 80 bits from crypto/rand. Within one millisecond the
// random part of the previous id is incremented instead of redrawn, so ids
// from one process are strictly increasing, which keeps the (created_at, id)
// keyset order and id order in agreement.
type idGen struct {
	mu     sync.Mutex
	lastMS uint64
	hi     uint16 // top 16 of the 80 random bits
	lo     uint64 // low 64 of them
}

// next returns prefix + a new 26-character id for time t.
func (g *idGen) next(prefix string, t time.Time) string {
	ms := uint64(t.UnixMilli())
	g.mu.Lock()
	if ms <= g.lastMS {
		// Same millisecond, or the clock stepped back: stay monotonic.
		ms = g.lastMS
		g.lo++
		if g.lo == 0 {
			g.hi++
		}
	} else {
		var b [10]byte
		if _, err := rand.Read(b[:]); err != nil {
			// crypto/rand.Read does not fail on supported platforms (Go 1.24+).
			panic("order: crypto/rand: " + err.Error())
		}
		g.lastMS = ms
		g.hi = binary.BigEndian.Uint16(b[:2])
		g.lo = binary.BigEndian.Uint64(b[2:])
	}
	hi, lo := g.hi, g.lo
	g.mu.Unlock()

	// 128 bits = ms(48) | hi(16) | lo(64), written as 26 base32 digits
	// (130 bits, the top two always zero).
	top := ms<<16 | uint64(hi) // 64 bits: the high half
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		// Shift the 128-bit value (top:lo) right by 5.
		lo = lo>>5 | top<<59
		top >>= 5
	}
	return prefix + string(out[:])
}
