package hashring_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"github.com/orderflow/orderflow/hashring"
)

func mustBounded(tb testing.TB, r *hashring.Ring, cfg hashring.BoundedConfig) *hashring.Bounded {
	tb.Helper()
	b, err := hashring.NewBounded(r, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// checkCaps asserts the bounded-loads guarantee for equal weights: no member
// holds more than ⌈c × average⌉ of the keys placed now.
func checkCaps(tb testing.TB, b *hashring.Bounded, members int) {
	tb.Helper()
	m := b.Len()
	limit := int(math.Ceil(b.LoadFactor() * float64(m) / float64(members)))
	total := 0
	for name, load := range b.Loads() {
		total += load
		if load > limit {
			tb.Fatalf("%s holds %d of %d keys, cap ⌈%.2f × %d / %d⌉ = %d", name, load, m, b.LoadFactor(), m, members, limit)
		}
		if c := b.Cap(name); load > c {
			tb.Fatalf("%s holds %d, over its Cap %d", name, load, c)
		}
	}
	if total != m {
		tb.Fatalf("loads sum to %d, Len = %d", total, m)
	}
}

func TestNewBoundedRejectsBadLoadFactor(t *testing.T) {
	r := mustNew(t, names("n", 3))
	if _, err := hashring.NewBounded(nil, hashring.BoundedConfig{}); err == nil {
		t.Error("NewBounded(nil ring): no error")
	}
	for _, c := range []float64{1, 0.5, -2, math.Inf(1), math.NaN()} {
		if _, err := hashring.NewBounded(r, hashring.BoundedConfig{LoadFactor: c}); err == nil {
			t.Errorf("NewBounded(c=%v): no error", c)
		}
	}
}

// TestBoundedNeverExceedsCap places and releases keys at random, with
// membership changes in between, and checks the cap after every step.
func TestBoundedNeverExceedsCap(t *testing.T) {
	for _, c := range []float64{1.05, 1.25, 2} {
		t.Run(fmt.Sprintf("c=%v", c), func(t *testing.T) {
			r := mustNew(t, names("node-", 5), hashring.WithVirtualNodes(16)) // few vnodes: skewed arcs, much overflow
			members := 5
			b := mustBounded(t, r, hashring.BoundedConfig{LoadFactor: c})
			rng := rand.New(rand.NewPCG(3, 4))
			placed := map[string]bool{}
			for step := range 6_000 {
				switch op := rng.IntN(100); {
				case op < 60:
					k := "order-" + strconv.Itoa(rng.IntN(3_000))
					if _, ok := b.Place(k); !ok {
						t.Fatal("Place on non-empty ring: not ok")
					}
					placed[k] = true
				case op < 99:
					k := "order-" + strconv.Itoa(rng.IntN(3_000))
					if got := b.Release(k); got != placed[k] {
						t.Fatalf("Release(%q) = %v, placed %v", k, got, placed[k])
					}
					delete(placed, k)
				case members < 8:
					if err := r.Add(hashring.Member{Name: "extra-" + strconv.Itoa(step)}); err != nil {
						t.Fatal(err)
					}
					members++
				default:
					ms := r.Members()
					r.Remove(ms[rng.IntN(len(ms))].Name)
					members--
				}
				b.Sync()
				if b.Len() != len(placed) {
					t.Fatalf("step %d: Len = %d, placed %d", step, b.Len(), len(placed))
				}
				checkCaps(t, b, members)
			}
		})
	}
}

func TestBoundedPlaceIsStableAndFollowsTheRingWhenUnderCap(t *testing.T) {
	r := mustNew(t, names("node-", 4))
	b := mustBounded(t, r, hashring.BoundedConfig{LoadFactor: 100}) // cap never binds
	for _, k := range keys(1_000) {
		got, _ := b.Place(k)
		want, _ := r.Locate(k)
		if got != want {
			t.Fatalf("Place(%q) = %q with no binding cap, ring says %q", k, got, want)
		}
		if again, _ := b.Place(k); again != got {
			t.Fatalf("second Place(%q) = %q, first %q", k, again, got)
		}
		if l, ok := b.Lookup(k); !ok || l != got {
			t.Fatalf("Lookup(%q) = %q, %v; want %q", k, l, ok, got)
		}
	}
	if _, ok := b.Lookup("never-placed"); ok {
		t.Fatal("Lookup of an unplaced key: ok")
	}
}

// TestBoundedMembershipMovement: adding an 11th member to 10 moves about a
// fair share of keys (Bounded moves keys to the newcomer and sheds overfull
// members, as the paper's bound allows), and OnMove reports every move.
func TestBoundedMembershipMovement(t *testing.T) {
	r := mustNew(t, names("node-", 10))
	moves := map[string]string{}
	b := mustBounded(t, r, hashring.BoundedConfig{OnMove: func(k, from, to string) {
		if from == to || from == "" || to == "" {
			t.Errorf("OnMove(%q, %q, %q)", k, from, to)
		}
		moves[k] = to
	}})
	ks := keys(20_000)
	before := map[string]string{}
	for _, k := range ks {
		before[k], _ = b.Place(k)
	}
	if err := r.Add(hashring.Member{Name: "node-10"}); err != nil {
		t.Fatal(err)
	}
	n := b.Sync()
	changed := 0
	for _, k := range ks {
		now, _ := b.Lookup(k)
		if now != before[k] {
			changed++
			if moves[k] != now {
				t.Fatalf("key %q moved %q -> %q without OnMove", k, before[k], now)
			}
		}
	}
	if changed != n {
		t.Fatalf("Sync reported %d moves, %d keys changed member", n, changed)
	}
	frac := float64(n) / float64(len(ks))
	if frac < 1.0/11*0.8 || frac > 1.0/11*1.5 {
		t.Fatalf("moved %.1f%% of keys adding an 11th member; expected near 9.1%%", 100*frac)
	}
	checkCaps(t, b, 11)
	r.Remove("node-4")
	b.Sync()
	checkCaps(t, b, 10)
	if l := b.Loads()["node-4"]; l != 0 {
		t.Fatalf("removed member still holds %d keys", l)
	}
}

func TestBoundedEmptyRingDropsPlacements(t *testing.T) {
	r := mustNew(t, names("n", 2))
	b := mustBounded(t, r, hashring.BoundedConfig{})
	b.Place("a")
	r.Remove("n0")
	r.Remove("n1")
	if _, ok := b.Place("b"); ok {
		t.Fatal("Place on an empty ring: ok")
	}
	if b.Len() != 0 {
		t.Fatalf("Len = %d after the ring emptied", b.Len())
	}
}

// TestBoundedConcurrentUse places and releases keys from several goroutines
// while the ring changes; under -race it checks the locking, and at the end
// the cap still holds.
func TestBoundedConcurrentUse(t *testing.T) {
	r := mustNew(t, names("node-", 4), hashring.WithVirtualNodes(32))
	b := mustBounded(t, r, hashring.BoundedConfig{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2_000 {
				k := "order-" + strconv.Itoa(g*10_000+i)
				if _, ok := b.Place(k); !ok {
					t.Errorf("Place(%q): not ok", k)
					return
				}
				if i%3 == 0 {
					b.Release(k)
				}
			}
		}()
	}
	for i := range 50 {
		if i%2 == 0 {
			if err := r.Add(hashring.Member{Name: "flux"}); err != nil {
				t.Error(err)
			}
		} else {
			r.Remove("flux")
		}
		b.Sync()
	}
	wg.Wait()
	b.Sync()
	checkCaps(t, b, r.Len())
}
