package hashring

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// refOwner is ring semantics by definition: the owner of the first point at
// or after h in the sorted points, wrapping to the first.
func refOwner(s *snapshot, h uint64) uint32 {
	j, _ := slices.BinarySearch(s.hashes, h)
	if j == len(s.hashes) {
		j = 0
	}
	return s.owners[j]
}

// TestIndexKeepsRingSemantics checks that the bucket index answers exactly as
// a binary search of the sorted ring does, at every kind of entry and at the
// edges: point hashes themselves, their neighbours, bucket boundaries, 0 and
// the largest hash.
func TestIndexKeepsRingSemantics(t *testing.T) {
	tests := []struct {
		members, vnodes int
	}{
		{1, 1}, {2, 1}, {3, 7}, {3, 160}, {10, 2048}, {40, 100},
		{1000, 8}, // 10-bit owners, 10 split bits: the slow path is common
		{3000, 2}, // owners too wide to split: zero-or-many buckets only
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("members=%d/vnodes=%d", tt.members, tt.vnodes), func(t *testing.T) {
			ms := make([]Member, tt.members)
			for i := range ms {
				ms[i] = Member{Name: fmt.Sprintf("m%d", i), Weight: 1 + i%3}
			}
			ms, err := normalize(ms)
			if err != nil {
				t.Fatal(err)
			}
			s := build(nil, ms, tt.vnodes)
			probes := []uint64{0, 1, math.MaxUint64, math.MaxUint64 - 1}
			for _, h := range s.hashes {
				probes = append(probes, h-1, h, h+1)
			}
			for b := range 1 << s.bits {
				start := uint64(b) << s.shift
				probes = append(probes, start, start-1)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for range 100_000 {
				probes = append(probes, rng.Uint64())
			}
			for _, h := range probes {
				if got, want := s.owner(h), refOwner(s, h); got != want {
					t.Fatalf("owner(%#x) = %d, want %d", h, got, want)
				}
				if got, want := s.owners[s.position(h)], refOwner(s, h); got != want {
					t.Fatalf("owners[position(%#x)] = %d, want %d", h, got, want)
				}
			}
		})
	}
}

// TestSplitEqualBitsTakesSlowPath builds a bucket with one point and probes
// hashes that share the point's 30 split bits, on both sides of it.
func TestSplitEqualBitsTakesSlowPath(t *testing.T) {
	tests := []struct {
		name    string
		members int
	}{
		{"Compact", 3},
		{"Wide", compactMaxMembers + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := make([]Member, tt.members)
			for i := range ms {
				ms[i] = Member{Name: fmt.Sprintf("m%d", i), Weight: 1}
			}
			ms, _ = normalize(ms)
			s := build(nil, ms, 50)
			split := s.splitBits
			if s.compact != nil {
				split = compactSplitBits
			}
			found := 0
			for b := range 1 << s.bits {
				if !s.isSplit(b) {
					continue
				}
				found++
				p := s.hashes[s.position(uint64(b)<<s.shift)]
				low := uint64(1)<<(64-s.bits-split) - 1 // bits below the split bits
				for _, h := range []uint64{p &^ low, p | low, p, p - 1, p + 1} {
					if got, want := s.owner(h), refOwner(s, h); got != want {
						t.Fatalf("owner(%#x) near point %#x = %d, want %d", h, p, got, want)
					}
				}
			}
			if found == 0 {
				t.Fatal("no split bucket in the test ring")
			}
		})
	}
}

// TestSideEntries builds a compact index by hand around buckets with two,
// three and four points, points that share their side split bits, equal
// points of two members, and a many bucket at the end of the ring, and checks
// every probe near them against a binary search of the sorted ring.
func TestSideEntries(t *testing.T) {
	const shift = 58 // 16 points: 2^4 rounded, times 2^compactSpare = 64 buckets
	at := func(b, off uint64) uint64 { return b<<shift + off }
	pts := []point{
		{at(3, 100), 0}, {at(3, 1<<40), 1}, // two points
		{at(7, 5), 2}, {at(7, 1<<50), 0}, {at(7, 1<<57), 1}, // three
		{at(9, 1), 0}, {at(9, 2), 1}, {at(9, 3), 2}, {at(9, 4), 0}, // four: no side entry
		{at(12, 1<<45), 1}, {at(12, 1<<45+7), 2}, // the same 24 split bits
		{at(13, 1<<20), 0}, {at(13, 1<<20), 2}, // equal points of two members
		{at(20, 1<<33), 1},                           // one point
		{math.MaxUint64 - 1, 1}, {math.MaxUint64, 2}, // the last bucket: wraps
	}
	s := &snapshot{names: []string{"a", "b", "c"}}
	for _, p := range pts {
		s.hashes, s.owners = append(s.hashes, p.h), append(s.owners, p.owner)
	}
	s.buildIndex()
	if s.compact == nil || s.shift != shift {
		t.Fatalf("want a compact index with shift %d, got shift %d", shift, s.shift)
	}
	for _, tc := range []struct {
		bucket   int
		overflow bool
	}{{3, false}, {7, false}, {9, true}, {12, false}, {13, false}, {63, false}} {
		e := s.compact[tc.bucket]
		if e < compactMany || (e&compactNoSplit == sideOverflow) != tc.overflow {
			t.Errorf("bucket %d: entry %#x, want many with overflow=%v", tc.bucket, e, tc.overflow)
		}
	}
	const low = 1<<(64-6-sideSplitBits) - 1 // bits below the side split bits
	probes := []uint64{0, 1, math.MaxUint64}
	for _, p := range pts {
		probes = append(probes, p.h-1, p.h, p.h+1, p.h&^low, p.h|low)
	}
	for b := range uint64(64) {
		probes = append(probes, b<<shift, b<<shift-1)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10_000 {
		b := []uint64{3, 7, 9, 12, 13, 63}[rng.IntN(6)]
		probes = append(probes, b<<shift|rng.Uint64()>>6)
	}
	for _, h := range probes {
		if got, want := s.owner(h), refOwner(s, h); got != want {
			t.Fatalf("owner(%#x) = %d, want %d", h, got, want)
		}
	}
}

func (s *snapshot) isSplit(b int) bool {
	if s.compact != nil {
		e := s.compact[b]
		return e < compactMany && e&compactNoSplit != compactNoSplit
	}
	return s.index[b]>>kindShift == kindSplit
}

// FuzzOwnerMatchesSortedRing feeds arbitrary hashes, and arbitrary members,
// to the index and compares with a binary search of the sorted ring.
func FuzzOwnerMatchesSortedRing(f *testing.F) {
	f.Add(uint64(0), "a", uint8(3), uint8(1))
	f.Add(uint64(math.MaxUint64), "10.0.0.1:8080", uint8(10), uint8(50))
	f.Add(uint64(0x3baf4120aa43a0ad), "node", uint8(1), uint8(200))
	f.Fuzz(func(t *testing.T, h uint64, prefix string, members, vnodes uint8) {
		if prefix == "" || members == 0 || vnodes == 0 {
			return
		}
		ms := make([]Member, members)
		for i := range ms {
			ms[i] = Member{Name: fmt.Sprintf("%s-%d", prefix, i)}
		}
		ms, err := normalize(ms)
		if err != nil {
			return // e.g. a prefix that makes names collide
		}
		s := build(nil, ms, int(vnodes))
		if got, want := s.owner(h), refOwner(s, h); got != want {
			t.Fatalf("owner(%#x) = %d, want %d", h, got, want)
		}
		if got, want := s.owners[s.position(h)], refOwner(s, h); got != want {
			t.Fatalf("owners[position(%#x)] = %d, want %d", h, got, want)
		}
	})
}

// TestIncrementalBuildEqualsFreshBuild: snapshots built by merging with the
// previous one are identical to snapshots built from scratch.
func TestIncrementalBuildEqualsFreshBuild(t *testing.T) {
	r, err := New(nil, WithVirtualNodes(40))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for step := range 200 {
		name := fmt.Sprintf("m%d", rng.IntN(12))
		switch rng.IntN(3) {
		case 0, 1:
			if err := r.Add(Member{Name: name, Weight: 1 + rng.IntN(3)}); err != nil {
				t.Fatal(err)
			}
		default:
			r.Remove(name)
		}
		got := r.load()
		want := build(nil, got.members, 40)
		if !slices.Equal(got.hashes, want.hashes) || !slices.Equal(got.owners, want.owners) ||
			!slices.Equal(got.index, want.index) || !slices.Equal(got.compact, want.compact) ||
			!slices.Equal(got.starts, want.starts) || !slices.Equal(got.side, want.side) ||
			!slices.Equal(got.sideBase, want.sideBase) {
			t.Fatalf("step %d: incremental snapshot differs from a fresh build of %v", step, got.members)
		}
	}
}
