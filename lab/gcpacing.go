package lab

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
)

func init() {
	Register(Experiment{
		Name:  "gc-pacing",
		Title: "GOGC=100 sets the next GC target at 2x the live heap; how long are the pauses; what GOMEMLIMIT changes",
		Run:   runGCPacing,
	})
}

const mib = 1 << 20

// gcSink keeps the churned garbage reachable for one iteration only, so the
// compiler cannot elide the allocation.
var gcSink []byte

// gcRead samples the runtime metrics the pacer is built from.
type gcRead struct {
	live, goal, stacks, globals, cycles float64
	pauses                              *metrics.Float64Histogram
}

func readGC() gcRead {
	s := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/heap/goal:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/sched/pauses/total/gc:seconds"},
	}
	metrics.Read(s)
	return gcRead{
		live:    float64(s[0].Value.Uint64()),
		goal:    float64(s[1].Value.Uint64()),
		stacks:  float64(s[2].Value.Uint64()),
		globals: float64(s[3].Value.Uint64()),
		cycles:  float64(s[4].Value.Uint64()),
		pauses:  s[5].Value.Float64Histogram(),
	}
}

// memInUse is what GOMEMLIMIT is compared with: all memory mapped by the
// runtime minus what it has returned to the OS.
func memInUse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}

// histDiff returns the pause durations (bucket midpoints, seconds) that the
// histogram gained between two reads, one entry per pause.
func histDiff(before, after *metrics.Float64Histogram) []float64 {
	var out []float64
	for i := range after.Counts {
		n := after.Counts[i] - before.Counts[i]
		lo, hi := after.Buckets[i], after.Buckets[i+1]
		if math.IsInf(lo, -1) {
			lo = 0
		}
		if math.IsInf(hi, 1) {
			hi = lo
		}
		for range n {
			out = append(out, (lo+hi)/2)
		}
	}
	return out
}

// allocLive builds a live heap of about n bytes, in 64 KiB pieces, and
// touches it so that it is really there.
func allocLive(n int) [][]byte {
	out := make([][]byte, 0, n/(64<<10))
	for range n / (64 << 10) {
		b := make([]byte, 64<<10)
		b[0] = 1
		out = append(out, b)
	}
	return out
}

type gcRow struct {
	sizeMiB                       int
	live, goal, predicted         float64
	heapAlloc, nextGC             uint64
	limitGoal, limit              float64
	pausesP50, pausesMax, pausesN float64
	naturalCycles                 float64
	ratio                         Measurement
	runs                          int
}

func runGCPacing(ctx context.Context, opt Options) (Result, error) {
	p := planFor(opt)
	sizes := []int{1, 4, 16, 64}
	churnFactor := 4
	if opt.Quick {
		sizes = []int{1, 16}
		churnFactor = 1
	}
	res := Result{
		Name: "gc-pacing",
		Claim: "With GOGC=100 the next GC target is about 2x the live heap: after 4 MiB of allocations " +
			"HeapAlloc 4.3 MB → NextGC 8.6 MB, with GC pauses of 32–51 µs.",
	}
	var rows []gcRow
	var err error
	Exclusive(func() {
		prevPercent := debug.SetGCPercent(100)
		defer debug.SetGCPercent(prevPercent)
		prevLimit := debug.SetMemoryLimit(math.MaxInt64)
		defer debug.SetMemoryLimit(prevLimit)
		for _, size := range sizes {
			if err = ctx.Err(); err != nil {
				return
			}
			rows = append(rows, gcMeasure(p, size, churnFactor))
		}
	})
	if err != nil {
		return res, fmt.Errorf("gc-pacing: %w", err)
	}
	return gcVerdict(res, rows), nil
}

// gcMeasure measures one live-heap size: the goal after forced collections,
// the pauses of natural collections while garbage churns, and the goal once
// a memory limit sits just above what the process uses.
func gcMeasure(p plan, size, churnFactor int) gcRow {
	row := gcRow{sizeMiB: size, runs: p.runs}
	live := allocLive(size * mib)
	var ratios, goals, lives, preds []float64
	for range p.runs {
		runtime.GC()
		g := readGC()
		lives = append(lives, g.live)
		goals = append(goals, g.goal)
		// The Go 1.21+ pacer: goal = live + (live + stacks + globals) * GOGC/100.
		preds = append(preds, g.live+(g.live+g.stacks+g.globals))
		ratios = append(ratios, g.goal/g.live)
	}
	row.ratio = summarize("", "", ratios)
	row.live = summarize("", "", lives).Median
	row.goal = summarize("", "", goals).Median
	row.predicted = summarize("", "", preds).Median
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	row.heapAlloc, row.nextGC = ms.HeapAlloc, ms.NextGC

	// Churn garbage in 4 KiB pieces so that the pacer, not us, starts cycles.
	before := readGC()
	for range max(32, churnFactor*size) * mib / 4096 {
		gcSink = make([]byte, 4096)
	}
	runtime.KeepAlive(gcSink)
	gcSink = nil
	after := readGC()
	pauses := histDiff(before.pauses, after.pauses)
	sortFloats(pauses)
	row.pausesN = float64(len(pauses))
	row.pausesP50 = quantile(pauses, 0.5)
	if len(pauses) > 0 {
		row.pausesMax = pauses[len(pauses)-1]
	}
	row.naturalCycles = after.cycles - before.cycles

	// A memory limit half the live heap above what is in use now. Free
	// memory is returned to the OS first: the limit counts retained free
	// spans too, and the churn above left plenty.
	debug.FreeOSMemory()
	row.limit = float64(memInUse()) + float64(size*mib)/2
	prev := debug.SetMemoryLimit(int64(row.limit))
	runtime.GC()
	row.limitGoal = readGC().goal
	debug.SetMemoryLimit(prev)
	runtime.KeepAlive(live)
	return row
}

func gcVerdict(res Result, rows []gcRow) Result {
	var tb strings.Builder
	tb.WriteString("| live heap | HeapAlloc | NextGC | goal/live | predicted goal/live (live+stacks+globals) | goal/live with GOMEMLIMIT | natural GCs | pauses | pause p50 | pause max |\n")
	tb.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var holdAt, failAt, capped []string
	var allPauses []float64
	for _, r := range rows {
		ratio := r.goal / r.live
		limRatio := r.limitGoal / r.live
		fmt.Fprintf(&tb, "| %d MiB | %.2f MB | %.2f MB | %.2f | %.2f | %.2f | %.0f | %.0f | %s | %s |\n",
			r.sizeMiB, float64(r.heapAlloc)/1e6, float64(r.nextGC)/1e6, ratio, r.predicted/r.live, limRatio,
			r.naturalCycles, r.pausesN, fmtDur(r.pausesP50), fmtDur(r.pausesMax))
		res.Measurements = append(res.Measurements,
			Measurement{Name: fmt.Sprintf("goal/live, live %d MiB", r.sizeMiB), Median: ratio, Spread: r.ratio.Spread, Unit: "x", Runs: r.runs},
			Measurement{Name: fmt.Sprintf("goal/live with GOMEMLIMIT, live %d MiB", r.sizeMiB), Median: limRatio, Unit: "x", Runs: 1},
		)
		if ratio >= 1.8 && ratio <= 2.3 {
			holdAt = append(holdAt, fmt.Sprintf("%d MiB", r.sizeMiB))
		} else {
			failAt = append(failAt, fmt.Sprintf("%d MiB (%.2fx)", r.sizeMiB, ratio))
		}
		if limRatio < ratio-0.1 {
			capped = append(capped, fmt.Sprintf("%d MiB: %.2fx→%.2fx", r.sizeMiB, ratio, limRatio))
		}
		if r.pausesN > 0 {
			allPauses = append(allPauses, r.pausesP50)
		}
	}
	res.Table = tb.String()
	// The "with GOMEMLIMIT" rows are one collection each; the pause row
	// summarises the per-size medians.
	pm := summarize("GC pause p50 (per live-heap size)", "µs", scale(allPauses, 1e6))
	res.Measurements = append(res.Measurements, pm)

	pauseInQuote := pm.Median >= 32 && pm.Median <= 51
	var notes []string
	notes = append(notes, fmt.Sprintf("Pauses: median %.1f µs per stop-the-world phase (quoted 32–51 µs: %s); "+
		"pauses are this machine's and this heap's, GC work itself is concurrent.", pm.Median, holdsWord(pauseInQuote)))
	if len(capped) > 0 {
		notes = append(notes, "A GOMEMLIMIT half the live heap above current use lowered the goal ("+strings.Join(capped, ", ")+
			"): the limit, not GOGC, paces then.")
	}
	notes = append(notes, "The goal is live + (live + goroutine stacks + globals) × GOGC/100 since Go 1.18, with a 4 MiB floor "+
		"(GOGC=100): small heaps get a goal far above 2x.")
	res.Notes = strings.Join(notes, " ")
	switch {
	case len(failAt) == 0:
		res.Verdict = Holds
		res.Condition = fmt.Sprintf("GOGC=100 and no GOMEMLIMIT, live heaps %s", strings.Join(holdAt, ", "))
	case len(holdAt) == 0:
		res.Verdict = Refuted
		res.Condition = "goal/live outside 1.8–2.3 at every size: " + strings.Join(failAt, ", ")
	default:
		res.Verdict = Depends
		res.Condition = fmt.Sprintf("holds (goal/live within 1.8–2.3) for live heaps of %s with GOGC=100 and no memory limit; not for %s",
			strings.Join(holdAt, ", "), strings.Join(failAt, ", "))
	}
	if len(capped) > 0 {
		res.Condition += fmt.Sprintf("; a GOMEMLIMIT close to the heap overrides GOGC (goal lowered at %d of %d sizes)", len(capped), len(rows))
	}
	res.Condition += fmt.Sprintf("; GC pause median %.0f µs against the quoted 32–51 µs (%s on this machine%s)",
		pm.Median, holdsWord(pauseInQuote), raceNote())
	return res
}

func scale(xs []float64, f float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = x * f
	}
	return out
}
