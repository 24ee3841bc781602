package hashring

// The compact index serves rings of up to 128 members, which is most of
// them, with two bytes per bucket:
//
//	bit 15     many: the bucket holds two or more points (see below)
//	bits 14–8  first: the owner of the first point at or after the bucket's start
//	bits 7–0   split: the 8 hash bits just below the bucket prefix of the
//	           bucket's single point; 0xFF for an empty bucket.
//	           For a many bucket: its slot in the block's run of side entries
//
// A key in a bucket with at most one point belongs to the bucket's first
// owner if its own 8 bits are below split, and otherwise to the next bucket's
// first owner (the point after the bucket's point is the first point at or
// after the next bucket's start). So a lookup reads two adjacent entries,
// usually in one cache line, and picks one with a conditional move instead of
// branching on the kind of bucket: the kind is random per key, and on a
// branch a random kind costs a misprediction on about every other lookup.
//
// A bucket with two or three points resolves from one side entry of 16 bytes
// (compactSide), found through the base of its block of 256 buckets: one
// more cache line, not the sorted points' three dependent misses. Only keys
// whose split bits equal a point's (1 in 256 of single-point lookups, 1 in
// 2^24 in a side entry) and buckets of four or more points take the exact
// slow path.
const (
	compactMaxMembers = 1 << 7
	compactMany       = 1 << 15
	compactOwnerMask  = 1<<7 - 1
	compactSplitBits  = 8
	compactNoSplit    = 1<<compactSplitBits - 1
	// compactSpare gives a compact index 2^compactSpare buckets per point
	// (rounded up to a power of two): four, so that buckets with many points
	// are under 3% of the ring instead of 12–19% at one bucket per point. At
	// 100 members of 2048 points that is a 2 MiB index
	// (docs/benchmarks/hashring.md).
	compactSpare = 2

	// A side entry holds up to sideWidth-1 points of a many bucket, as
	// split<<8 | owner with sideSplitBits split bits, sorted, then fillers of
	// split sideNoSplit whose owner is the next bucket's first owner.
	sideWidth     = 4
	sideSplitBits = 24
	sideNoSplit   = 1<<sideSplitBits - 1
	// Buckets are grouped in blocks of 1<<blockBits; sideBase[block] is the
	// first side entry of the block, and a many bucket's low 8 bits are its
	// offset from there (sideOverflow: no side entry, take the slow path).
	blockBits    = 8
	sideOverflow = compactNoSplit
)

// buildCompact fills s.compact, plus one entry past the end that repeats the
// first, so bucket b+1 exists for the last bucket too and wraps to the start
// of the ring; and the side entries of many buckets.
func (s *snapshot) buildCompact() {
	n := len(s.hashes)
	nb := 1 << s.bits
	s.compact = make([]uint16, nb+1)
	s.sideBase = make([]uint32, (nb+1<<blockBits-1)>>blockBits)
	s.side = nil
	j := 0
	for b := range nb {
		if b&(1<<blockBits-1) == 0 {
			s.sideBase[b>>blockBits] = uint32(len(s.side) / sideWidth)
		}
		for j < n && s.hashes[j]>>s.shift < uint64(b) {
			j++
		}
		e := j
		for e < n && s.hashes[e]>>s.shift == uint64(b) {
			e++
		}
		first := uint16(s.owners[s.wrap(j)]) << compactSplitBits
		switch {
		case e == j:
			s.compact[b] = first | compactNoSplit
		case e == j+1:
			s.compact[b] = first | uint16(s.hashes[j]<<s.bits>>(64-compactSplitBits))
		default:
			slot := len(s.side)/sideWidth - int(s.sideBase[b>>blockBits])
			if e-j >= sideWidth || slot >= sideOverflow {
				s.compact[b] = compactMany | first | sideOverflow
				continue
			}
			s.compact[b] = compactMany | first | uint16(slot)
			after := s.owners[s.wrap(e)]
			for i := range sideWidth {
				v := uint32(sideNoSplit)<<8 | after
				if j+i < e {
					v = uint32(s.hashes[j+i]<<s.bits>>(64-sideSplitBits))<<8 | s.owners[j+i]
				}
				s.side = append(s.side, v)
			}
		}
	}
	s.compact[nb] = s.compact[0]
	s.side = s.side[:len(s.side):len(s.side)]
}

// ownerCompact is owner for rings with a compact index.
func (s *snapshot) ownerCompact(h uint64) uint32 {
	b := h >> s.shift
	e := s.compact[b]
	if e >= compactMany {
		return s.ownerSide(h, b, e)
	}
	kb := uint16(h << s.bits >> (64 - compactSplitBits))
	split := e & compactNoSplit
	o := e
	if kb > split {
		o = s.compact[b+1]
	}
	if kb == split {
		return s.ownerExact(h)
	}
	return uint32(o>>compactSplitBits) & compactOwnerMask
}

// ownerSide resolves a key in a many bucket from the bucket's side entry:
// the owner of the first point whose split bits are not below the key's.
// Counting the points below instead of searching keeps it branch-free.
func (s *snapshot) ownerSide(h, b uint64, e uint16) uint32 {
	off := e & compactNoSplit
	if off == sideOverflow {
		return s.ownerExact(h)
	}
	i := (int(s.sideBase[b>>blockBits]) + int(off)) * sideWidth
	se := s.side[i : i+sideWidth : i+sideWidth]
	ks := uint32(h << s.bits >> (64 - sideSplitBits))
	n := 0
	if se[0]>>8 < ks {
		n++
	}
	if se[1]>>8 < ks {
		n++
	}
	if se[2]>>8 < ks {
		n++
	}
	v := se[n&(sideWidth-1)]
	if v>>8 == ks {
		return s.ownerExact(h)
	}
	return v & 0xFF
}

// ownerExact is the slow path: a scan of the sorted points. Kept out of line
// so that the fast paths stay small enough to inline.
//
//go:noinline
func (s *snapshot) ownerExact(h uint64) uint32 {
	return s.owners[s.position(h)]
}
