package hashring_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/orderflow/orderflow/hashring"
)

func names(prefix string, n int) []hashring.Member {
	ms := make([]hashring.Member, n)
	for i := range ms {
		ms[i] = hashring.Member{Name: prefix + strconv.Itoa(i)}
	}
	return ms
}

func mustNew(tb testing.TB, ms []hashring.Member, opts ...hashring.Option) *hashring.Ring {
	tb.Helper()
	r, err := hashring.New(ms, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func keys(n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = "order-" + strconv.Itoa(i+1)
	}
	return ks
}

func placeAll(tb testing.TB, r *hashring.Ring, ks []string) map[string]string {
	tb.Helper()
	out := make(map[string]string, len(ks))
	for _, k := range ks {
		m, ok := r.Locate(k)
		if !ok {
			tb.Fatalf("Locate(%q) on a non-empty ring: not ok", k)
		}
		out[k] = m
	}
	return out
}

func TestNewRejectsInvalidMembers(t *testing.T) {
	tests := []struct {
		name    string
		members []hashring.Member
	}{
		{"ErrEmptyName", []hashring.Member{{Name: ""}}},
		{"ErrNegativeWeight", []hashring.Member{{Name: "a", Weight: -1}}},
		{"ErrDuplicate", []hashring.Member{{Name: "a"}, {Name: "b"}, {Name: "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := hashring.New(tt.members)
			if !errors.Is(err, hashring.ErrInvalidMember) {
				t.Fatalf("New(%v) error = %v, want ErrInvalidMember", tt.members, err)
			}
		})
	}
}

func TestZeroRingUsesDefaults(t *testing.T) {
	var zero hashring.Ring
	for _, m := range goldenMembers {
		if err := zero.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	want := mustNew(t, goldenMembers)
	for _, k := range keys(1_000) {
		got, _ := zero.Locate(k)
		if w, _ := want.Locate(k); got != w {
			t.Fatalf("zero Ring: Locate(%q) = %q, New gives %q", k, got, w)
		}
	}
	if zero.VirtualNodes() != hashring.DefaultVirtualNodes {
		t.Fatalf("zero Ring VirtualNodes = %d", zero.VirtualNodes())
	}
}

func TestEmptyRing(t *testing.T) {
	for name, r := range map[string]*hashring.Ring{"zero": new(hashring.Ring), "new": mustNew(t, nil)} {
		t.Run(name, func(t *testing.T) {
			if m, ok := r.Locate("k"); ok || m != "" {
				t.Fatalf("Locate on empty ring = %q, %v; want \"\", false", m, ok)
			}
			if got := r.LocateN("k", 3); len(got) != 0 {
				t.Fatalf("LocateN on empty ring = %v, want none", got)
			}
		})
	}
}

// TestEveryKeyMapsToLiveMember, and the movement properties below, check
// ring semantics across sizes and weights.
func TestEveryKeyMapsToLiveMember(t *testing.T) {
	for _, n := range []int{1, 2, 3, 10, 50} {
		t.Run(fmt.Sprintf("members=%d", n), func(t *testing.T) {
			ms := names("node-", n)
			live := map[string]bool{}
			for i := range ms {
				ms[i].Weight = 1 + i%3
				live[ms[i].Name] = true
			}
			r := mustNew(t, ms, hashring.WithVirtualNodes(64))
			for k, m := range placeAll(t, r, keys(20_000)) {
				if !live[m] {
					t.Fatalf("key %q placed on %q, not a member", k, m)
				}
			}
		})
	}
}

func TestRemoveMovesOnlyTheRemovedMembersKeys(t *testing.T) {
	for _, n := range []int{2, 3, 10, 30} {
		t.Run(fmt.Sprintf("members=%d", n), func(t *testing.T) {
			r := mustNew(t, names("node-", n), hashring.WithVirtualNodes(100))
			ks := keys(20_000)
			before := placeAll(t, r, ks)
			gone := "node-" + strconv.Itoa(n/2)
			if !r.Remove(gone) {
				t.Fatalf("Remove(%q) = false", gone)
			}
			for k, m := range placeAll(t, r, ks) {
				if m == gone {
					t.Fatalf("key %q still on removed member", k)
				}
				if was := before[k]; was != gone && was != m {
					t.Fatalf("key %q moved %q -> %q, neither removed", k, was, m)
				}
			}
		})
	}
}

func TestAddMovesKeysOnlyToTheNewMember(t *testing.T) {
	for _, n := range []int{1, 3, 10, 30} {
		t.Run(fmt.Sprintf("members=%d", n), func(t *testing.T) {
			r := mustNew(t, names("node-", n), hashring.WithVirtualNodes(100))
			ks := keys(20_000)
			before := placeAll(t, r, ks)
			if err := r.Add(hashring.Member{Name: "newcomer", Weight: 2}); err != nil {
				t.Fatal(err)
			}
			moved := 0
			for k, m := range placeAll(t, r, ks) {
				if m != before[k] {
					moved++
					if m != "newcomer" {
						t.Fatalf("key %q moved %q -> %q, not to the new member", k, before[k], m)
					}
				}
			}
			if moved == 0 {
				t.Fatal("no key moved to the new member")
			}
		})
	}
}

func TestWeightsScaleShares(t *testing.T) {
	r := mustNew(t, []hashring.Member{{Name: "small", Weight: 1}, {Name: "big", Weight: 3}})
	count := map[string]int{}
	for _, m := range placeAll(t, r, keys(100_000)) {
		count[m]++
	}
	ratio := float64(count["big"]) / float64(count["small"])
	if ratio < 2.7 || ratio > 3.3 {
		t.Fatalf("big/small = %.2f (%v), want about 3", ratio, count)
	}
}

func TestLocateN(t *testing.T) {
	r := mustNew(t, names("node-", 10), hashring.WithVirtualNodes(200))
	for _, k := range keys(2_000) {
		for _, n := range []int{0, 1, 3, 10, 12} {
			got := r.LocateN(k, n)
			if want := min(n, 10); len(got) != want {
				t.Fatalf("LocateN(%q, %d) has %d members, want %d", k, n, len(got), want)
			}
			if n > 0 {
				if first, _ := r.Locate(k); got[0] != first {
					t.Fatalf("LocateN(%q, %d)[0] = %q, Locate = %q", k, n, got[0], first)
				}
			}
			s := slices.Clone(got)
			slices.Sort(s)
			if len(slices.Compact(s)) != len(got) {
				t.Fatalf("LocateN(%q, %d) = %v has duplicates", k, n, got)
			}
		}
	}
}

// TestLocateNFallbacksSurviveRemoval: when a member leaves, every key's
// fallback list only loses that member, so replicas and fallbacks of the
// others stay where they were.
func TestLocateNFallbacksSurviveRemoval(t *testing.T) {
	r := mustNew(t, names("node-", 8), hashring.WithVirtualNodes(100))
	ks := keys(5_000)
	before := make(map[string][]string, len(ks))
	for _, k := range ks {
		before[k] = r.LocateN(k, 4)
	}
	r.Remove("node-3")
	for _, k := range ks {
		want := slices.DeleteFunc(slices.Clone(before[k]), func(m string) bool { return m == "node-3" })
		got := r.LocateN(k, 4)
		if !slices.Equal(got[:len(want)], want) {
			t.Fatalf("key %q: fallbacks %v after removing node-3, were %v", k, got, before[k])
		}
	}
}

func TestLookupsAllocateNothing(t *testing.T) {
	r := mustNew(t, names("node-", 10))
	buf := make([]string, 0, 3)
	tests := []struct {
		name string
		f    func()
	}{
		{"Locate", func() { r.Locate("order-42") }},
		{"AppendN", func() { buf = r.AppendN(buf[:0], "order-42", 3) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a := testing.AllocsPerRun(1000, tt.f); a != 0 {
				t.Fatalf("%s allocates %v times per call", tt.name, a)
			}
		})
	}
}

func TestAddUpdatesWeight(t *testing.T) {
	r := mustNew(t, names("node-", 3))
	if err := r.Add(hashring.Member{Name: "node-1", Weight: 5}); err != nil {
		t.Fatal(err)
	}
	want := []hashring.Member{{Name: "node-0", Weight: 1}, {Name: "node-1", Weight: 5}, {Name: "node-2", Weight: 1}}
	if got := r.Members(); !slices.Equal(got, want) {
		t.Fatalf("Members() = %v, want %v", got, want)
	}
	if r.Remove("absent") {
		t.Fatal(`Remove("absent") = true`)
	}
}

// TestConcurrentLookupsDuringMembershipChanges runs lookups while members
// come and go; under -race it checks that readers never see a torn ring. The
// members "stable-*" never leave, and every answer must be a member that was
// present at some point.
func TestConcurrentLookupsDuringMembershipChanges(t *testing.T) {
	r := mustNew(t, names("stable-", 3), hashring.WithVirtualNodes(64))
	valid := map[string]bool{"stable-0": true, "stable-1": true, "stable-2": true}
	for i := range 5 {
		valid["flux-"+strconv.Itoa(i)] = true
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]string, 0, 3)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := "order-" + strconv.Itoa(g*1_000_000+i)
				m, ok := r.Locate(k)
				buf = r.AppendN(buf[:0], k, 3)
				if !ok || !valid[m] || len(buf) != 3 || !valid[buf[2]] {
					errs <- fmt.Errorf("key %q: Locate = %q, %v; AppendN = %v", k, m, ok, buf)
					return
				}
			}
		}()
	}
	for i := range 200 {
		name := "flux-" + strconv.Itoa(i%5)
		if i%2 == 0 {
			if err := r.Add(hashring.Member{Name: name}); err != nil {
				t.Error(err)
			}
		} else {
			r.Remove(name)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
