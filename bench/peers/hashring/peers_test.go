package ringpeers_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	ringpeers "github.com/orderflow/orderflow/bench/peers/hashring"
	"github.com/orderflow/orderflow/hashring"
	"github.com/orderflow/orderflow/hashring/ringmeasure"
)

// TestReport measures every implementation by ringmeasure and prints the
// Markdown tables of docs/benchmarks/hashring.md. By default it runs the
// quick configuration (seconds); RINGPEERS_FULL=1 runs the configuration of
// record (100,000 keys, 50 member sets):
//
//	cd bench/peers && RINGPEERS_FULL=1 go test -run TestReport -v -count=1 ./hashring/
func TestReport(t *testing.T) {
	cfg := ringmeasure.Quick
	if os.Getenv("RINGPEERS_FULL") == "1" {
		cfg = ringmeasure.Full
	}
	var reports []ringmeasure.Report
	add := func(impl ringmeasure.Impl, vnodes int) ringmeasure.Report {
		r := ringmeasure.Measure(impl, vnodes, cfg)
		reports = append(reports, r)
		return r
	}
	ours := add(ringpeers.Ours(), 0)
	if ours.Movement.BetweenStayers != 0 {
		t.Errorf("our ring moved %d keys between old members", ours.Movement.BetweenStayers)
	}
	for _, impl := range ringpeers.Rings() {
		add(impl, 160)
	}
	for _, impl := range ringpeers.Rings()[1:] {
		add(impl, hashring.DefaultVirtualNodes)
	}
	for _, impl := range ringpeers.References() {
		add(impl, 0)
	}
	t.Logf("config: %d keys, %d member sets\n\n%s", cfg.Keys, cfg.Sets, ringmeasure.Markdown(reports))

	var claim []ringmeasure.NamedBalance
	for _, v := range []int{1, 128} {
		for _, impl := range ringpeers.Rings() {
			if impl.Name == ringpeers.GoZero().Name && v < ringpeers.GoZeroDefault {
				continue // go-zero raises anything below 100 to 100
			}
			claim = append(claim, ringmeasure.NamedBalance{Impl: impl.Name, Balance: ringmeasure.MeasureBalance(impl, 3, v, cfg)})
		}
	}
	for _, impl := range ringpeers.References() {
		claim = append(claim, ringmeasure.NamedBalance{Impl: impl.Name, Balance: ringmeasure.MeasureBalance(impl, 3, 0, cfg)})
	}
	t.Logf("quoted claim, 3 members:\n\n%s", ringmeasure.ClaimMarkdown(claim))

	// Where the quoted figures fall among the member sets.
	quoted := map[int][2]float64{1: {78.3, 22.1}, 128: {34.6, 4.8}}
	var where strings.Builder
	where.WriteString("| implementation | vnodes | sets with max share ≥ quoted | sets with stddev ≥ quoted |\n|---|---|---|---|\n")
	for _, c := range claim {
		q, ok := quoted[c.VNodes]
		if !ok {
			continue
		}
		fmt.Fprintf(&where, "| %s | %d | %.0f%% (≥ %.1f%%) | %.0f%% (≥ %.1f) |\n", c.Impl, c.VNodes,
			100*c.MaxShare.AtLeast(q[0]), q[0], 100*c.StdDev.AtLeast(q[1]), q[1])
	}
	t.Logf("quoted figures among the member sets:\n\n%s", where.String())
}

var benchKeys = ringmeasure.Keys(1 << 16)

// benchImpls are the contenders of BenchmarkLocate, with short names that
// benchstat can pivot on (-col /impl).
var benchImpls = []struct {
	id     string
	impl   ringmeasure.Impl
	vnodes int
}{
	{"ours", ringpeers.Ours(), 0},
	{"ours-v160", ringpeers.Ours(), 160},
	{"gozero", ringpeers.GoZero(), 160},
	{"groupcache", ringpeers.Groupcache(), 160},
	{"stathat", ringpeers.Stathat(), 160},
	{"serialx", ringpeers.Serialx(), 160},
	{"jump", ringpeers.Jump(), 0},
	{"rendezvous", ringpeers.Rendezvous(), 0},
}

// BenchmarkLocate times one lookup of an "order-N" key, for every
// implementation at 3, 10 and 100 members, in one run:
//
//	cd bench/peers && go test -run '^$' -bench Locate -benchtime=200ms -count=6 ./hashring/ | tee /tmp/ring.txt
//	benchstat -col /impl /tmp/ring.txt
func BenchmarkLocate(b *testing.B) {
	for _, members := range []int{3, 10, 100} {
		for _, c := range benchImpls {
			b.Run("members="+strconv.Itoa(members)+"/impl="+c.id, func(b *testing.B) {
				loc := c.impl.Build(ringmeasure.MemberSet(0, members), c.vnodes)
				// The build's garbage (megabytes for a big ring) would start
				// a GC cycle whose marking runs during the first lookups and
				// evicts the ring from the caches: collect it before timing.
				runtime.GC()
				// On a shared machine the wall clock counts the time other
				// tenants hold the CPU; the thread's CPU time does not. Both
				// are reported: sec/op as always, cpu-ns/op beside it.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				cpu0 := threadCPU(b)
				b.ReportAllocs()
				i := 0
				var sink int
				for b.Loop() {
					sink += len(loc(benchKeys[i&(len(benchKeys)-1)]))
					i++
				}
				b.ReportMetric(float64(threadCPU(b)-cpu0)/float64(i), "cpu-ns/op")
				if sink == 0 {
					b.Fatal("no lookups")
				}
			})
		}
	}
}

func ExampleRings() {
	for _, impl := range ringpeers.Rings() {
		loc := impl.Build([]string{"a", "b", "c"}, 160)
		m := loc("order-1")
		fmt.Println(impl.Name, m == "a" || m == "b" || m == "c")
	}
	// Output:
	// orderflow/hashring true
	// go-zero core/hash true
	// groupcache/consistenthash true
	// stathat/consistent true
	// serialx/hashring true
}

// threadCPU is the CPU time this OS thread has used, in nanoseconds
// (CLOCK_THREAD_CPUTIME_ID).
func threadCPU(b *testing.B) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return ts.Nano()
}
