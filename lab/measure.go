package lab

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"
	"time"
)

// exclusive serialises the experiments that change process-wide runtime
// settings: two of them overlapping would each measure the other's settings.
var exclusive sync.Mutex

// Exclusive runs f while no other experiment that changes global runtime
// settings runs. Experiments outside this package (bench/peers/lab) use it
// for the same reason the ones inside do.
func Exclusive(f func()) {
	exclusive.Lock()
	defer exclusive.Unlock()
	f()
}

// plan is how much work one run does: repetitions of every measurement and
// the target time of one timed loop. Quick runs trade precision for speed so
// that a test under -race on a shared 2-core machine stays in seconds.
type plan struct {
	runs   int
	target time.Duration
}

func planFor(opt Options) plan {
	if opt.Quick {
		return plan{runs: 3, target: 2 * time.Millisecond}
	}
	return plan{runs: 7, target: 60 * time.Millisecond}
}

// summarize turns repeated observations into a Measurement: their median and
// their spread (max - min), so that a reader sees how noisy the machine was.
func summarize(name, unit string, xs []float64) Measurement {
	m := Measurement{Name: name, Unit: unit, Runs: len(xs)}
	if len(xs) == 0 {
		return m
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m.Median = median(s)
	m.Spread = s[len(s)-1] - s[0]
	return m
}

// median of sorted xs.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// quantile of sorted xs, nearest rank.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// opCost is the result of one timed loop.
type opCost struct {
	ns     float64 // nanoseconds per operation
	allocs float64 // heap objects allocated per operation
	bytes  float64 // heap bytes allocated per operation
}

// allocNoise, when set, reports the objects and bytes that a background
// goroutine of the running experiment allocated on purpose (GC pressure),
// so that heapAllocs can leave them out of the measured loop's count: the
// runtime only counts allocations process-wide. It is set and read only by
// the goroutine running an experiment that holds exclusive.
var allocNoise func() (objects, bytes uint64)

// heapAllocs reads the cumulative count of allocated heap objects and bytes,
// as testing.B does. runtime.ReadMemStats stops the world, but it flushes
// the per-P allocation caches; runtime/metrics would not, and undercounts
// by up to a span's worth of objects per size class.
func heapAllocs() (objects, bytes uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	objects, bytes = ms.Mallocs, ms.TotalAlloc
	if allocNoise != nil {
		o, b := allocNoise()
		objects, bytes = objects-o, bytes-b
	}
	return objects, bytes
}

// minOpIters is the fewest iterations a timed loop may report.
const minOpIters = 100

// measureOp times fn(n) the way testing.Benchmark does — growing n until one
// call lasts at least target — and reports the cost per operation. We do not
// call testing.Benchmark itself: outside `go test` it always aims at the
// default -test.benchtime of one second, which would make a --quick run of
// ten experiments take minutes.
func measureOp(target time.Duration, fn func(n int)) opCost {
	n := 1
	for {
		runtime.GC() // start every attempt from the same, collected heap
		o0, b0 := heapAllocs()
		start := time.Now()
		fn(n)
		d := time.Since(start)
		o1, b1 := heapAllocs()
		// At least minOpIters iterations: one stall of a few milliseconds
		// (a GC assist, a descheduling on a shared machine) must not
		// become the result of a run that did one iteration.
		if (d >= target && n >= minOpIters) || n >= 1<<30 {
			// Signed differences, clamped: with allocNoise set, the
			// background allocator may be caught between its allocation and
			// its count, an error of one chunk either way.
			return opCost{
				ns:     float64(d.Nanoseconds()) / float64(n),
				allocs: max(0, float64(int64(o1-o0))) / float64(n),
				bytes:  max(0, float64(int64(b1-b0))) / float64(n),
			}
		}
		// Aim 20% past the target from the rate seen so far, growing at
		// most 100x per step, as testing.B does.
		next := n * 100
		if d > 0 {
			next = int(float64(n) * 1.2 * float64(target) / float64(d))
		}
		n = max(n+1, min(next, n*100))
	}
}

// repeatOp runs measureOp p.runs times and summarises ns/op and allocs/op
// under the given name.
func repeatOp(ctx context.Context, p plan, name string, fn func(n int)) (ns, allocs Measurement, err error) {
	var nss, als []float64
	for range p.runs {
		if err := ctx.Err(); err != nil {
			return ns, allocs, fmt.Errorf("lab: %s: %w", name, err)
		}
		c := measureOp(p.target, fn)
		nss = append(nss, c.ns)
		als = append(als, c.allocs)
	}
	return summarize(name, "ns/op", nss), summarize(name+" allocs", "allocs/op", als), nil
}

// ratio is a/b, or NaN when b is zero, for verdicts that compare.
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// fmtDur renders seconds with a unit a reader takes in at a glance.
func fmtDur(sec float64) string {
	return time.Duration(sec * float64(time.Second)).Round(10 * time.Nanosecond).String()
}

func sortFloats(xs []float64) { sort.Float64s(xs) }

// namedOp is one loop of a comparison.
type namedOp struct {
	name string
	fn   func(n int)
}

// compareOps times each op once per round, rounds interleaved (A B C, A B C,
// …), so that a burst of load from the other tenants of a shared machine
// hits every contender instead of one. It returns each op's ns/op and
// allocs/op Measurements, in order, and the raw ns/op per round for paired
// differences.
func compareOps(ctx context.Context, p plan, ops []namedOp) (ns, allocs []Measurement, rounds [][]float64, err error) {
	rounds = make([][]float64, len(ops))
	als := make([][]float64, len(ops))
	for range p.runs {
		for i, op := range ops {
			if err := ctx.Err(); err != nil {
				return nil, nil, nil, fmt.Errorf("lab: %s: %w", op.name, err)
			}
			c := measureOp(p.target, op.fn)
			rounds[i] = append(rounds[i], c.ns)
			als[i] = append(als[i], c.allocs)
		}
	}
	for i, op := range ops {
		ns = append(ns, summarize(op.name, "ns/op", rounds[i]))
		allocs = append(allocs, summarize(op.name+" allocs", "allocs/op", als[i]))
	}
	return ns, allocs, rounds, nil
}

// pairedDiffs returns a[i]-b[i] (scaled by f): the differences of two ops
// measured in the same rounds, less noisy than a difference of medians.
func pairedDiffs(a, b []float64, f float64) []float64 {
	d := make([]float64, len(a))
	for i := range a {
		d[i] = (a[i] - b[i]) * f
	}
	return d
}

// versus says where observations lie against a threshold, with the
// machine's noise taken into account: "above" when even the lower quartile
// is at or over it, "below" when even the upper quartile is under it, and
// "straddling" when the middle half spans it: the run cannot tell.
func versus(xs []float64, threshold float64) (class string, q25, q75 float64) {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	q25, q75 = quantile(s, 0.25), quantile(s, 0.75)
	switch {
	case q25 >= threshold:
		return "above", q25, q75
	case q75 < threshold:
		return "below", q25, q75
	default:
		return "straddling", q25, q75
	}
}
