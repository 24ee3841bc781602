package ringmeasure_test

import (
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/hashring/ringmeasure"
)

// modulo is the naive scheme consistent hashing replaces: hash mod n.
var modulo = ringmeasure.Impl{
	Name: "hash mod n",
	Build: func(members []string, _ int) ringmeasure.Locate {
		ms := append([]string(nil), members...)
		return func(k string) string {
			h := fnv.New64a()
			h.Write([]byte(k))
			return ms[h.Sum64()%uint64(len(ms))]
		}
	},
}

// first sends every key to the first member: the worst balance there is.
var first = ringmeasure.Impl{
	Name:  "first member",
	Build: func(members []string, _ int) ringmeasure.Locate { return func(string) string { return members[0] } },
}

func TestMeasureBalance(t *testing.T) {
	cfg := ringmeasure.Config{Keys: 10_000, Sets: 4}
	tests := []struct {
		name         string
		impl         ringmeasure.Impl
		members      int
		maxAvg       float64 // expected mean of max/avg, within tol
		tol          float64
		wantMaxShare float64
	}{
		{"AllOnOneMember", first, 4, 4, 0, 100},
		{"ModuloIsEven", modulo, 4, 1.02, 0.03, 25.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ringmeasure.MeasureBalance(tt.impl, tt.members, 0, cfg)
			if math.Abs(b.MaxAvg.Mean-tt.maxAvg) > tt.tol+1e-9 {
				t.Errorf("max/avg mean = %.3f, want %.3f ± %.3f", b.MaxAvg.Mean, tt.maxAvg, tt.tol)
			}
			if math.Abs(b.MaxShare.Median-tt.wantMaxShare) > 1 {
				t.Errorf("max share = %.1f%%, want about %.1f%%", b.MaxShare.Median, tt.wantMaxShare)
			}
			if b.MaxAvg.Min > b.MaxAvg.Median || b.MaxAvg.Median > b.MaxAvg.P95 || b.MaxAvg.P95 > b.MaxAvg.Max {
				t.Errorf("summary out of order: %+v", b.MaxAvg)
			}
		})
	}
	if got := ringmeasure.MeasureBalance(modulo, 4, 0, cfg).MaxShare.AtLeast(100); got != 0 {
		t.Errorf("AtLeast(100%%) of modulo's max share = %v, want 0", got)
	}
	if got := ringmeasure.MeasureBalance(first, 4, 0, cfg).MaxShare.AtLeast(100); got != 1 {
		t.Errorf("AtLeast(100%%) of first's max share = %v, want 1", got)
	}
	if s := ringmeasure.MeasureBalance(first, 4, 0, cfg).StdDev.Median; math.Abs(s-math.Sqrt(3)*25) > 0.01 {
		// shares 100, 0, 0, 0 around 25: deviations 75, -25, -25, -25.
		t.Errorf("stddev = %.2f points, want %.2f", s, math.Sqrt(3)*25)
	}
}

func TestMeasureMovementOfModulo(t *testing.T) {
	m := ringmeasure.MeasureMovement(modulo, 10, 11, 0, ringmeasure.Config{Keys: 10_000, Sets: 2})
	// mod n keeps a key only when h%10 == h%11: about 1 in 11.
	if m.Moved.Mean < 85 || m.Moved.Mean > 95 {
		t.Errorf("modulo moved %.1f%%, want about 90.9%%", m.Moved.Mean)
	}
	if m.BetweenStayers == 0 {
		t.Error("modulo moved no key between old members")
	}
	if math.Abs(m.Ideal-100.0/11) > 1e-9 {
		t.Errorf("Ideal = %v", m.Ideal)
	}
}

func TestMemberSetsExtendAndDiffer(t *testing.T) {
	a, b, c := ringmeasure.MemberSet(1, 3), ringmeasure.MemberSet(1, 300), ringmeasure.MemberSet(2, 3)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("MemberSet(1, 3)[%d] = %q, MemberSet(1, 300)[%d] = %q", i, a[i], i, b[i])
		}
		if a[i] == c[i] {
			t.Fatalf("sets 1 and 2 share %q", a[i])
		}
	}
	seen := map[string]bool{}
	for _, n := range b {
		if seen[n] {
			t.Fatalf("duplicate name %q", n)
		}
		seen[n] = true
	}
	if k := ringmeasure.Keys(2); k[0] != "order-1" || k[1] != "order-2" {
		t.Fatalf("Keys(2) = %q", k)
	}
}

func TestMarkdown(t *testing.T) {
	cfg := ringmeasure.Config{Keys: 1_000, Sets: 2}
	md := ringmeasure.Markdown([]ringmeasure.Report{ringmeasure.Measure(modulo, 0, cfg)})
	if !strings.Contains(md, "| hash mod n | default |") {
		t.Errorf("table lacks the row:\n%s", md)
	}
	cl := ringmeasure.ClaimMarkdown([]ringmeasure.NamedBalance{{Impl: "x", Balance: ringmeasure.MeasureBalance(first, 3, 1, cfg)}})
	if !strings.Contains(cl, "| x | 1 | 3 | 100.0% | 100.0% |") {
		t.Errorf("claim table lacks the row:\n%s", cl)
	}
}

// Measure any key-to-member scheme through a Locate function; here the naive
// hash-mod-n, which moves most keys when a member joins.
func Example() {
	m := ringmeasure.MeasureMovement(modulo, 10, 11, 0, ringmeasure.Config{Keys: 10_000, Sets: 3})
	fmt.Printf("ideal %.1f%%, moved more than 80%%: %v\n", m.Ideal, m.Moved.Mean > 80)
	// Output: ideal 9.1%, moved more than 80%: true
}
