package hashring

// The compact index serves rings of up to 128 members, which is most of
// them, with two bytes per bucket:
//
//	bit 15     many: the bucket holds two or more points (scan them)
//	bits 14–8  first: the owner of the first point at or after the bucket's start
//	bits 7–0   split: the 8 hash bits just below the bucket prefix of the
//	           bucket's single point; 0xFF for an empty bucket
//
// A key in a bucket with at most one point belongs to the bucket's first
// owner if its own 8 bits are below split, and otherwise to the next bucket's
// first owner (the point after the bucket's point is the first point at or
// after the next bucket's start). So a lookup reads two adjacent entries,
// usually in one cache line, and picks one with a conditional move instead of
// branching on the kind of bucket: the kind is random per key, and on a
// branch a random kind costs a misprediction on about every other lookup.
// Only buckets with many points, and keys whose 8 bits equal split (1 in 256
// of the rest), take the exact slow path.
const (
	compactMaxMembers = 1 << 7
	compactMany       = 1 << 15
	compactOwnerMask  = 1<<7 - 1
	compactSplitBits  = 8
	compactNoSplit    = 1<<compactSplitBits - 1
	// compactSpare gives a compact index 2^compactSpare buckets per point
	// (rounded up to a power of two): four, so that buckets with many points,
	// whose lookups take the slow path and its two extra cache misses, are
	// under 3% of the ring instead of 12–19% at one bucket per point. At 100
	// members of 2048 points that is a 2 MiB index, and lookups of random
	// keys measured 2–3× faster than with the 512 KiB one
	// (docs/benchmarks/hashring.md).
	compactSpare = 2
)

// buildCompact fills s.compact, plus one entry past the end that repeats the
// first, so bucket b+1 exists for the last bucket too and wraps to the start
// of the ring.
func (s *snapshot) buildCompact() {
	n := len(s.hashes)
	nb := 1 << s.bits
	s.compact = make([]uint16, nb+1)
	j := 0
	for b := range nb {
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
			s.compact[b] = compactMany | first
		}
	}
	s.compact[nb] = s.compact[0]
}

// ownerCompact is owner for rings with a compact index.
func (s *snapshot) ownerCompact(h uint64) uint32 {
	b := h >> s.shift
	e := s.compact[b]
	kb := uint16(h << s.bits >> (64 - compactSplitBits))
	split := e & compactNoSplit
	o := e
	if kb > split {
		o = s.compact[b+1]
	}
	if e >= compactMany || kb == split {
		return s.owners[s.position(h)]
	}
	return uint32(o>>compactSplitBits) & compactOwnerMask
}
