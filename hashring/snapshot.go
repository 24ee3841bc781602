package hashring

import (
	"math/bits"
	"slices"
	"strconv"

	"github.com/zeebo/xxh3"
)

// Hash is the hash every placement is computed with: XXH3-64 (seed 0, the
// default secret) of the key's bytes. It is part of the placement contract —
// every replica of every version must compute it the same way — so it never
// changes; the golden vectors in the tests pin it. XXH3 rather than XXH64
// because order ids are short, and on 8–16 byte keys XXH3 costs about half
// of what XXH64 does, which is most of a lookup's work.
func Hash(key string) uint64 { return xxh3.HashString(key) }

// pointHash is the ring position of a member's i-th virtual node:
// Hash(name + "#" + decimal(i)). Also part of the placement contract.
func pointHash(buf []byte, name string, i int) (uint64, []byte) {
	buf = append(buf[:0], name...)
	buf = append(buf, '#')
	buf = strconv.AppendInt(buf, int64(i), 10)
	return xxh3.Hash(buf), buf
}

// The wide index, for rings of more than 128 members, has one uint32 entry
// per bucket (rings up to 128 members use the two-byte index of compact.go);
// its top two bits say how the bucket resolves. Most buckets hold zero or one
// ring point (the index has at least as many buckets as points), and both
// cases resolve from the entry alone, in one memory access, without touching
// the sorted points.
const (
	// kindScan: the low 30 bits are the position of the first point >= the
	// bucket's start; a short scan of the sorted points finds the successor.
	kindScan = 0
	// kindOwner: no point lies in the bucket, so one member owns all of it;
	// the low 30 bits are that member.
	kindOwner = 1
	// kindSplit: exactly one point lies in the bucket. From the top: the
	// point's owner (hashes up to the point) and the owner after it, ownerBits
	// each, then splitBits hash bits of the point taken just below the bucket
	// prefix. A key with the same split bits as the point (one in 2^splitBits)
	// takes the exact slow path.
	kindSplit = 2

	kindShift  = 30
	payload    = 1<<kindShift - 1
	minSplit   = 8  // fewer split bits would send too many keys to the slow path
	maxPayload = 30 // bits for two owners and the split bits
)

// maxIndexBits bounds the index at 2^22 entries (16 MiB); rings past ~4M
// points scan a few points per lookup instead. Positions must fit in 30 bits.
const maxIndexBits = 22

// snapshot is one immutable ring. Readers load it through an atomic pointer and
// never lock; writers build a new one and swap it in.
type snapshot struct {
	members []Member // sorted by name; members[o] owns the points with owner o
	names   []string // names[o] == members[o].Name, kept apart for the hot path
	hashes  []uint64 // ring points, ascending
	owners  []uint32 // owners[j] is the member index of hashes[j]
	// index[b] resolves hashes with h>>shift == b (see kindScan…). Every kind
	// gives exactly the sorted-ring answer, so the index only accelerates and
	// never changes placement. Nil when compact is used.
	index []uint32
	// starts[c] is the position of the first point >= h with
	// h>>startShift == c (len when none), for walks that need a position and
	// not only an owner. It has one entry per point or so, coarser than a
	// compact index's spare buckets: a scan from it covers a few more points,
	// which sit in the same cache line, for a quarter of the memory.
	starts     []uint32
	startShift uint
	// compact replaces index for rings of up to 128 members (compact.go).
	compact   []uint16
	side      []uint32 // side entries of a compact index's many buckets
	sideBase  []uint32 // first side entry of each block of buckets
	bits      uint     // log2 of the number of buckets
	shift     uint     // 64 - bits
	ownerBits uint     // width of an owner in a kindSplit entry; 0: no kindSplit
	splitBits uint     // 30 - 2*ownerBits
}

type point struct {
	h     uint64
	owner uint32
}

// build makes the snapshot for members (already validated, sorted by name).
// Points of members that prev already holds with the same weight are reused
// rather than rehashed and resorted, so adding or removing one member of a
// large ring costs a merge, not a rebuild. prev may be nil.
func build(prev *snapshot, members []Member, vnodes int) *snapshot {
	s := &snapshot{members: members, names: make([]string, len(members))}
	for i, m := range members {
		s.names[i] = m.Name
	}
	// remap[o] is the new owner index of prev's member o, or -1 if its points
	// cannot be reused. Owner indexes follow name order in both snapshots, so
	// prev's point order stays the new order for the points kept.
	var remap []int32
	reused := make([]bool, len(members))
	if prev != nil {
		remap = make([]int32, len(prev.members))
		for o, m := range prev.members {
			remap[o] = -1
			if i, ok := find(members, m.Name); ok && members[i].Weight == m.Weight {
				remap[o] = int32(i)
				reused[i] = true
			}
		}
	}
	nfresh := 0
	for o, m := range members {
		if !reused[o] {
			nfresh += vnodes * m.Weight
		}
	}
	fresh := make([]point, 0, nfresh)
	var buf []byte
	for o, m := range members {
		if reused[o] {
			continue
		}
		for i := range vnodes * m.Weight {
			var h uint64
			h, buf = pointHash(buf, m.Name, i)
			fresh = append(fresh, point{h, uint32(o)})
		}
	}
	slices.SortFunc(fresh, comparePoints)
	kept := 0
	if prev != nil {
		for _, o := range prev.owners {
			if remap[o] >= 0 {
				kept++
			}
		}
	}
	s.hashes = make([]uint64, 0, kept+len(fresh))
	s.owners = make([]uint32, 0, kept+len(fresh))
	// Merge the kept points (in prev's order) with the fresh ones.
	f := 0
	if prev != nil {
		for j, h := range prev.hashes {
			o := remap[prev.owners[j]]
			if o < 0 {
				continue
			}
			p := point{h, uint32(o)}
			for f < len(fresh) && comparePoints(fresh[f], p) < 0 {
				s.hashes, s.owners = append(s.hashes, fresh[f].h), append(s.owners, fresh[f].owner)
				f++
			}
			s.hashes, s.owners = append(s.hashes, p.h), append(s.owners, p.owner)
		}
	}
	for _, p := range fresh[f:] {
		s.hashes, s.owners = append(s.hashes, p.h), append(s.owners, p.owner)
	}
	s.buildIndex()
	return s
}

// comparePoints orders points by hash, ties by member name (owner indexes
// follow name order), so a tie resolves the same way whatever else is on the
// ring and no key moves between members that stay.
func comparePoints(a, b point) int {
	switch {
	case a.h < b.h:
		return -1
	case a.h > b.h:
		return 1
	}
	return int(a.owner) - int(b.owner)
}

// buildIndex sizes the index at the next power of two >= the number of
// points, so a bucket holds 0.5 to 1 point on average and about three buckets
// in four resolve from their entry alone (kindOwner or kindSplit); a compact
// index gets four times as many buckets (see compactSpare).
func (s *snapshot) buildIndex() {
	n := len(s.hashes)
	if n == 0 {
		return
	}
	k := min(max(bits.Len(uint(n-1)), 1), maxIndexBits)
	s.startShift = uint(64 - k)
	s.starts = make([]uint32, 1<<k)
	j := 0
	for c := range s.starts {
		for j < n && s.hashes[j]>>s.startShift < uint64(c) {
			j++
		}
		s.starts[c] = uint32(j)
	}
	if len(s.names) <= compactMaxMembers {
		k = min(k+compactSpare, maxIndexBits)
		s.bits, s.shift = uint(k), uint(64-k)
		s.buildCompact()
		return
	}
	s.bits, s.shift = uint(k), uint(64-k)
	if ob := max(bits.Len(uint(len(s.names)-1)), 1); maxPayload-2*ob >= minSplit {
		s.ownerBits, s.splitBits = uint(ob), uint(maxPayload-2*ob)
	}
	s.index = make([]uint32, 1<<k)
	for b, j32 := range s.starts {
		// Points inside the bucket: j … e-1.
		j := int(j32)
		e := j
		for e < n && s.hashes[e]>>s.shift == uint64(b) {
			e++
		}
		switch {
		case e == j:
			s.index[b] = kindOwner<<kindShift | s.owners[s.wrap(j)]
		case e == j+1 && s.ownerBits > 0:
			split := uint32((s.hashes[j] << s.bits) >> (64 - s.splitBits))
			s.index[b] = kindSplit<<kindShift |
				s.owners[j]<<(s.splitBits+s.ownerBits) | s.owners[s.wrap(e)]<<s.splitBits | split
		default:
			s.index[b] = kindScan<<kindShift | uint32(j)
		}
	}
}

func (s *snapshot) wrap(j int) int {
	if j == len(s.hashes) {
		return 0
	}
	return j
}

// owner returns the member index that owns hash h. Callers ensure the ring is
// not empty.
func (s *snapshot) owner(h uint64) uint32 {
	if s.compact != nil {
		return s.ownerCompact(h)
	}
	return s.ownerWide(h)
}

// ownerWide is owner for rings with a wide index.
func (s *snapshot) ownerWide(h uint64) uint32 {
	e := s.index[h>>s.shift]
	switch e >> kindShift {
	case kindOwner:
		return e & payload
	case kindSplit:
		kb := uint32((h << s.bits) >> (64 - s.splitBits))
		split := e & (1<<s.splitBits - 1)
		if kb < split {
			return (e & payload) >> (s.splitBits + s.ownerBits)
		}
		if kb > split {
			return (e >> s.splitBits) & (1<<s.ownerBits - 1)
		}
		return s.ownerExact(h)
	}
	return s.owners[s.scan(int(e&payload), h)]
}

// position returns the ring position of the first point >= h, wrapping; walks
// (LocateN, bounded loads) need a position and not only an owner.
func (s *snapshot) position(h uint64) int {
	return s.scan(int(s.starts[h>>s.startShift]), h)
}

func (s *snapshot) scan(j int, h uint64) int {
	hs := s.hashes
	for j < len(hs) && hs[j] < h {
		j++
	}
	if j == len(hs) {
		j = 0
	}
	return j
}
