package hashring

// The compact index serves rings of up to 128 members, which is most of
// them, with two bytes per bucket instead of four: half the memory a lookup
// touches, so the index of a 100-member ring at the default 2048 virtual
// nodes is 512 KiB instead of 1 MiB and stays nearer the core. An entry
// cannot hold the owner after a bucket's single point next to the point's
// own; that owner is the next bucket's first owner, which the next entry
// (usually in the same cache line) gives.
const (
	compactMaxMembers = 1 << compactOwnerBits
	compactOwnerBits  = 7
	compactSplitBits  = 7
	compactKindShift  = 14
	compactPayload    = 1<<compactKindShift - 1
	compactOwnerMask  = 1<<compactOwnerBits - 1
	compactSplitMask  = 1<<compactSplitBits - 1
)

// buildCompact fills s.compact from s.starts; the kinds mean what they mean
// in the wide index, with these payloads: kindOwner, the owner; kindSplit,
// the point's owner and the top 7 hash bits below the bucket prefix of the
// point; kindScan, none (starts[b] is the position to scan from).
func (s *snapshot) buildCompact() {
	n := len(s.hashes)
	s.compact = make([]uint16, len(s.starts))
	for b, j32 := range s.starts {
		j := int(j32)
		e := j
		for e < n && s.hashes[e]>>s.shift == uint64(b) {
			e++
		}
		switch {
		case e == j:
			s.compact[b] = kindOwner<<compactKindShift | uint16(s.owners[s.wrap(j)])
		case e == j+1:
			split := uint16((s.hashes[j] << s.bits) >> (64 - compactSplitBits))
			s.compact[b] = kindSplit<<compactKindShift | uint16(s.owners[j])<<compactSplitBits | split
		default:
			s.compact[b] = kindScan << compactKindShift
		}
	}
}

// ownerCompact is owner for rings with a compact index.
func (s *snapshot) ownerCompact(h uint64) uint32 {
	b := h >> s.shift
	e := s.compact[b]
	switch e >> compactKindShift {
	case kindOwner:
		return uint32(e & compactPayload)
	case kindSplit:
		kb := uint16((h << s.bits) >> (64 - compactSplitBits))
		split := e & compactSplitMask
		if kb < split {
			return uint32(e>>compactSplitBits) & compactOwnerMask
		}
		if kb > split {
			return s.firstOwner(b + 1)
		}
		return s.owners[s.position(h)] // same 7 bits as the point: compare in full
	}
	return s.owners[s.scan(int(s.starts[b]), h)]
}

// firstOwner is the owner of the first point at or after the start of
// bucket b (b == len wraps to the first bucket).
func (s *snapshot) firstOwner(b uint64) uint32 {
	if b == uint64(len(s.compact)) {
		b = 0
	}
	e := s.compact[b]
	switch e >> compactKindShift {
	case kindOwner:
		return uint32(e & compactPayload)
	case kindSplit:
		return uint32(e>>compactSplitBits) & compactOwnerMask
	}
	return s.owners[s.starts[b]]
}
