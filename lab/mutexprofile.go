package lab

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

func init() {
	Register(Experiment{
		Name:  "mutex-profile",
		Title: "runtime.SetMutexProfileFraction(1): overhead on a contended lock, and what the profile shows",
		Run:   runMutexProfile,
	})
}

// mpWorkers contend for one mutex: twice the usual 2 cores, so the lock is
// contended for real.
const mpWorkers = 4

var mpCounter int

// mpWorker takes the shared lock ops times, with a little work inside so
// that holders overlap with waiters. It is named in the profile.
//
//go:noinline
func mpWorker(mu *sync.Mutex, ops int) {
	for i := range ops {
		mu.Lock()
		mpCounter += i & 3
		for j := range 8 {
			mpCounter ^= j
		}
		mu.Unlock()
	}
}

// mpContend runs n lock/unlock pairs spread over mpWorkers goroutines.
func mpContend(n int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range mpWorkers {
		wg.Add(1)
		go func() { // owned: ends after its share of n
			defer wg.Done()
			mpWorker(&mu, n/mpWorkers+1)
		}()
	}
	wg.Wait()
}

// mutexBlock is one stack of the mutex profile.
type mutexBlock struct {
	cycles, count int64
	frames        []string
}

// readMutexProfile parses pprof.Lookup("mutex") in its debug=1 text form:
// "cycles count @ pcs" lines followed by "#\tpc\tfunc+off\tfile:line" frames.
func readMutexProfile() ([]mutexBlock, error) {
	var buf bytes.Buffer
	if err := pprof.Lookup("mutex").WriteTo(&buf, 1); err != nil {
		return nil, fmt.Errorf("mutex profile: %w", err)
	}
	var out []mutexBlock
	for _, line := range strings.Split(buf.String(), "\n") {
		switch {
		case strings.Contains(line, " @ "):
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			c, err1 := strconv.ParseInt(f[0], 10, 64)
			n, err2 := strconv.ParseInt(f[1], 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			out = append(out, mutexBlock{cycles: c, count: n})
		case strings.HasPrefix(line, "#\t") && len(out) > 0:
			f := strings.Split(line, "\t")
			if len(f) >= 3 {
				fn, _, _ := strings.Cut(f[2], "+")
				out[len(out)-1].frames = append(out[len(out)-1].frames, fn)
			}
		}
	}
	return out, nil
}

func runMutexProfile(ctx context.Context, opt Options) (Result, error) {
	p := planFor(opt)
	// Short loops see little contention that sleeps (waiters spin first),
	// and only sleeping waiters are recorded: give each loop some length.
	p.target = max(p.target, 20*time.Millisecond)
	res := Result{
		Name: "mutex-profile",
		Claim: "runtime.SetMutexProfileFraction(1) records every contention event, which finds the contended lock; " +
			"it is cheap enough to switch on in production.",
	}
	rates := []int{0, 100, 1}
	var rounds [][]float64
	var ns []Measurement
	var blocks []mutexBlock
	var err error
	Exclusive(func() {
		prev := runtime.SetMutexProfileFraction(-1)
		defer runtime.SetMutexProfileFraction(prev)
		var before []mutexBlock
		if before, err = readMutexProfile(); err != nil {
			return
		}
		var ops []namedOp
		for _, rate := range rates {
			ops = append(ops, namedOp{
				name: fmt.Sprintf("contended Lock/Unlock, %d goroutines, SetMutexProfileFraction(%d)", mpWorkers, rate),
				fn: func(n int) {
					runtime.SetMutexProfileFraction(rate)
					mpContend(n)
					runtime.SetMutexProfileFraction(0)
				},
			})
		}
		ns, _, rounds, err = compareOps(ctx, p, ops)
		if err != nil {
			return
		}
		var after []mutexBlock
		if after, err = readMutexProfile(); err != nil {
			return
		}
		blocks = profileGrowth(before, after)
	})
	if err != nil {
		return res, fmt.Errorf("mutex-profile: %w", err)
	}
	runtime.KeepAlive(mpCounter)
	res.Measurements = append(res.Measurements, ns...)
	over1 := pairedRatios(rounds[2], rounds[0])
	over100 := pairedRatios(rounds[1], rounds[0])
	res.Measurements = append(res.Measurements,
		summarize("overhead of fraction 100 against 0 (paired)", "%", over100),
		summarize("overhead of fraction 1 against 0 (paired)", "%", over1))
	return mpVerdict(res, blocks, over1), nil
}

// pairedRatios returns a[i]/b[i]-1 in percent.
func pairedRatios(a, b []float64) []float64 {
	d := make([]float64, len(a))
	for i := range a {
		d[i] = (ratio(a[i], b[i]) - 1) * 100
	}
	return d
}

// profileGrowth returns the stacks whose cycles grew between two reads of
// the cumulative profile, growth only, largest first.
func profileGrowth(before, after []mutexBlock) []mutexBlock {
	key := func(b mutexBlock) string { return strings.Join(b.frames, ";") }
	old := map[string]mutexBlock{}
	for _, b := range before {
		old[key(b)] = b
	}
	var out []mutexBlock
	for _, b := range after {
		o := old[key(b)]
		if d := b.cycles - o.cycles; d > 0 {
			out = append(out, mutexBlock{cycles: d, count: b.count - o.count, frames: b.frames})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].cycles > out[j].cycles })
	return out
}

func mpVerdict(res Result, blocks []mutexBlock, over1 []float64) Result {
	var total int64
	for _, b := range blocks {
		total += b.cycles
	}
	var tb strings.Builder
	tb.WriteString("| share of contention cycles | events | top frames (pprof.Lookup(\"mutex\"), debug=1) |\n|---:|---:|---|\n")
	named := false
	for i, b := range blocks {
		top := b.frames[:min(3, len(b.frames))]
		if i == 0 && strings.Contains(strings.Join(b.frames, " "), "lab.mpWorker") {
			named = true
		}
		if i < 3 {
			fmt.Fprintf(&tb, "| %.1f%% | %d | %s |\n", 100*float64(b.cycles)/float64(max(1, total)), b.count, strings.Join(top, " ← "))
		}
	}
	res.Table = tb.String()
	med := summarize("", "", over1).Median
	class, q25, q75 := versus(over1, 10)
	switch {
	case named && class == "below":
		res.Verdict = Holds
	case named:
		res.Verdict = Depends
	default:
		res.Verdict = Refuted
	}
	res.Condition = fmt.Sprintf("%s, GOMAXPROCS=%d, %d goroutines on one lock with a short critical section%s: the profile's top stack names the "+
		"contending function: %v; fraction 1 cost %.1f%% (median of %d paired runs, middle half %.0f…%.0f%%: %s the 10%% taken as \"cheap\") — "+
		"the cost grows with the contention rate, so a lock contended less than this one pays less",
		runtime.Version(), runtime.GOMAXPROCS(0), mpWorkers, raceNote(), named, med, len(over1), q25, q75, class)
	res.Notes = fmt.Sprint("The profile is cumulative since the process started; the table shows what grew during this run. " +
		"Stacks are those of the Unlock that made others wait, so the frame under sync.(*Mutex).Unlock is the holder to look at. " +
		"The previous fraction was restored afterwards.")
	return res
}
