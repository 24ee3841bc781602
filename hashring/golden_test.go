package hashring_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/hashring"
	"github.com/zeebo/xxh3"
)

// The golden vectors pin the placement contract: every replica of every
// version must place a key on the same member. A failure here means a change
// that moves keys in production; it needs a migration, not a new vector.

func TestGoldenHash(t *testing.T) {
	tests := []struct {
		key  string
		want uint64
	}{
		// XXH3-64, seed 0: checked against the reference C library
		// (libxxhash 0.8, through python3-xxhash's xxh3_64_intdigest).
		{"", 0x2d06800538d394c2}, // the published empty-input vector
		{"a", 0xe6c632b61e964e1f},
		{"order-1", 0x5fc46503368e2876},
		{"order-42", 0x79cca5910b9ace3c},
		{"10.0.0.1:8080#0", 0x16a198738b2d4c7f},
	}
	for _, tt := range tests {
		if got := hashring.Hash(tt.key); got != tt.want {
			t.Errorf("Hash(%q) = %#016x, want %#016x", tt.key, got, tt.want)
		}
	}
}

var goldenMembers = []hashring.Member{{Name: "10.0.0.1:8080"}, {Name: "10.0.0.2:8080"}, {Name: "10.0.0.3:8080", Weight: 2}}

// The expected lists were computed outside Go, from the documented rule, with
// the reference xxHash library (python3-xxhash): sort every point by (hash,
// name), take the first point at or after XXH3(key), walk on collecting
// distinct members.
func TestGoldenPlacement(t *testing.T) {
	const a, b, c = "10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"
	tests := []struct {
		name   string
		vnodes int
		want   map[string][]string
	}{
		{"DefaultVirtualNodes", 0, map[string][]string{
			"order-1":     {c, a, b},
			"order-2":     {c, b, a},
			"order-3":     {c, b, a},
			"order-4":     {b, c, a},
			"order-5":     {b, c, a},
			"order-6":     {c, a, b},
			"order-7":     {a, c, b},
			"order-8":     {b, c, a},
			"order-1000":  {c, b, a},
			"order-99999": {c, a, b},
		}},
		{"160VirtualNodes", 160, map[string][]string{
			"order-1":     {b, a, c},
			"order-2":     {c, a, b},
			"order-3":     {c, a, b},
			"order-4":     {b, a, c},
			"order-5":     {c, b, a},
			"order-6":     {c, a, b},
			"order-7":     {a, c, b},
			"order-8":     {c, b, a},
			"order-1000":  {a, b, c},
			"order-99999": {c, b, a},
		}},
	}
	if hashring.DefaultVirtualNodes != 2048 {
		t.Fatalf("DefaultVirtualNodes = %d: changing it moves keys", hashring.DefaultVirtualNodes)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustNew(t, goldenMembers, hashring.WithVirtualNodes(tt.vnodes))
			for key, want := range tt.want {
				if got := r.LocateN(key, 3); !slices.Equal(got, want) {
					t.Errorf("LocateN(%q, 3) = %q, want %q", key, got, want)
				}
			}
		})
	}
}

// TestPlacementFollowsTheDocumentedRule rebuilds the ring from its written
// definition — member points at XXH3(name + "#" + i) for i < vnodes×weight,
// a key at XXH3(key), owned by the first point at or after it, ties to the
// smaller name — and checks Locate against it, so the contract can be
// re-implemented elsewhere from the docs alone.
func TestPlacementFollowsTheDocumentedRule(t *testing.T) {
	type point struct {
		h    uint64
		name string
	}
	const vnodes = 50
	var pts []point
	for _, m := range goldenMembers {
		w := max(m.Weight, 1)
		for i := range vnodes * w {
			pts = append(pts, point{xxh3.HashString(m.Name + "#" + strconv.Itoa(i)), m.Name})
		}
	}
	slices.SortFunc(pts, func(x, y point) int {
		if x.h != y.h {
			if x.h < y.h {
				return -1
			}
			return 1
		}
		return strings.Compare(x.name, y.name)
	})
	r := mustNew(t, goldenMembers, hashring.WithVirtualNodes(vnodes))
	for _, k := range keys(50_000) {
		h := xxh3.HashString(k)
		j, _ := slices.BinarySearchFunc(pts, h, func(p point, h uint64) int {
			switch {
			case p.h < h:
				return -1
			case p.h > h:
				return 1
			}
			return 0
		})
		if j == len(pts) {
			j = 0
		}
		if got, _ := r.Locate(k); got != pts[j].name {
			t.Fatalf("Locate(%q) = %q, the documented rule gives %q", k, got, pts[j].name)
		}
	}
}
