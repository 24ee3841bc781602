package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

func init() {
	Register(Experiment{
		Name:  "gmp",
		Title: "a goroutine blocked in a syscall releases its P; sysmon preempts a tight loop after ~10 ms",
		Run:   runGMP,
	})
}

// handoff is what one syscall run observed under GOMAXPROCS=1.
type handoff struct {
	blockers     int           // goroutines blocked in read(2) at once
	inSyscall    int           // of them, seen in state "syscall" while the main goroutine ran Go code
	progress     int           // loop iterations the main goroutine made meanwhile
	resumeDelay  time.Duration // from the last blocker entering its syscall to the main goroutine running
	gomaxprocs   uint64        // /sched/gomaxprocs:threads during the run
	threadsDelta int           // threads created during the run (threadcreate profile)
	osThreads    int           // threads of the process while blocked (/proc/self/status), -1 if unknown
}

// preemptLatency runs one tight loop with no function calls on the only P
// and measures how long a goroutine it made runnable waits to run. Without
// preemption that goroutine would wait until the loop ends on its own
// (limit iterations), so preempted reports which of the two happened.
func preemptLatency(limit int) (lat time.Duration, preempted bool) {
	var stop atomic.Int32
	started := make(chan time.Time, 1)
	done := make(chan bool)
	go func() { // owned: ends when stop is set below, or after limit iterations
		started <- time.Now() // readies the main goroutine, which now needs this P
		i := 0
		for i < limit && stop.Load() == 0 {
			i++
		}
		done <- i < limit
	}()
	t0 := <-started
	lat = time.Since(t0)
	stop.Store(1)
	return lat, <-done
}

// preemptLatencyNoGC measures preemptLatency with the collector switched
// off (and restored): a GC stop-the-world also preempts the loop, and would
// be measured instead of sysmon. Callers hold exclusive.
func preemptLatencyNoGC(limit int) (time.Duration, bool) {
	runtime.GC()
	prev := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(prev)
	return preemptLatency(limit)
}

// goroutinesInSyscall counts goroutines whose stack contains fn and whose
// state is "syscall", from a full goroutine dump.
func goroutinesInSyscall(fn string) int {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 2); err != nil {
		return -1
	}
	n := 0
	for _, g := range strings.Split(buf.String(), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if strings.Contains(header, "[syscall") && strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// osThreads reads the thread count of this process on Linux.
func osThreads() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err == nil {
				return n
			}
		}
	}
	return -1
}

func readGOMAXPROCSMetric() uint64 {
	s := []metrics.Sample{{Name: "/sched/gomaxprocs:threads"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func runGMP(ctx context.Context, opt Options) (Result, error) {
	p := planFor(opt)
	res := Result{
		Name: "gmp",
		Claim: "A goroutine blocked in a system call releases its P, so other goroutines keep running (the runtime starts " +
			"another thread); sysmon preempts a goroutine in a tight loop after ~10 ms (asynchronous preemption, Go ≥1.14).",
	}
	blockers, hold := 4, 20*time.Millisecond
	limit := 1 << 30
	if opt.Quick {
		blockers, hold = 2, 2*time.Millisecond
		limit = 1 << 27
	}
	if strings.Contains(os.Getenv("GODEBUG"), "asyncpreemptoff=1") {
		limit = 1 << 24 // nothing will preempt the loop; keep the wait short
	}
	var h []handoff
	var lats []float64
	preemptedAll := true
	var err error
	Exclusive(func() {
		withGOMAXPROCS(1, func() {
			for range p.runs {
				if err = ctx.Err(); err != nil {
					return
				}
				var o handoff
				if o, err = observeSyscallHandoff(blockers, hold); err != nil {
					return
				}
				h = append(h, o)
				lat, ok := preemptLatencyNoGC(limit)
				lats = append(lats, lat.Seconds()*1e3)
				preemptedAll = preemptedAll && ok
			}
		})
	})
	if err != nil {
		return res, fmt.Errorf("gmp: %w", err)
	}
	return gmpVerdict(res, h, lats, preemptedAll), nil
}

func gmpVerdict(res Result, h []handoff, latsMS []float64, preemptedAll bool) Result {
	var progress, delays, threads, inSys []float64
	allInSyscall, allProgress := true, true
	for _, o := range h {
		progress = append(progress, float64(o.progress))
		delays = append(delays, o.resumeDelay.Seconds()*1e6)
		threads = append(threads, float64(o.threadsDelta))
		inSys = append(inSys, float64(o.inSyscall))
		allInSyscall = allInSyscall && o.inSyscall == o.blockers
		allProgress = allProgress && o.progress > 0
	}
	last := h[len(h)-1]
	lat := summarize("sysmon preemption: wait of a runnable goroutine behind a tight loop (GOMAXPROCS=1)", "ms", latsMS)
	res.Measurements = append(res.Measurements,
		summarize(fmt.Sprintf("goroutines seen in state syscall (of %d blocked in read(2))", last.blockers), "goroutines", inSys),
		summarize("iterations the main goroutine ran while they were blocked (GOMAXPROCS=1)", "iterations", progress),
		summarize("from the last blocker's syscall to the main goroutine running", "µs", delays),
		Measurement{Name: "threads created during the first run (threadcreate profile)", Median: threads[0], Unit: "threads", Runs: 1},
		Measurement{Name: "OS threads of the process while blocked (last run)", Median: float64(last.osThreads), Unit: "threads", Runs: 1},
		Measurement{Name: "/sched/gomaxprocs:threads during the run", Median: float64(last.gomaxprocs), Unit: "Ps", Runs: 1},
		lat,
	)
	syscallHolds := allInSyscall && allProgress
	preemptHolds := preemptedAll && lat.Median >= 5 && lat.Median <= 30
	switch {
	case syscallHolds && preemptHolds:
		res.Verdict = Holds
	case syscallHolds || preemptHolds:
		res.Verdict = Depends
	default:
		res.Verdict = Refuted
	}
	res.Condition = fmt.Sprintf("%s, GOMAXPROCS=1 during the run%s: with %d goroutines in read(2) the only P ran other Go code (%s); "+
		"the tight loop was preempted in every run: %v, after %.1f ms median (claim holds for 5–30 ms); GODEBUG=asyncpreemptoff=1 would turn this off",
		runtime.Version(), raceNote(), last.blockers, holdsWord(syscallHolds), preemptedAll, lat.Median)
	res.Notes = "The P is not handed off at the moment of the syscall: sysmon retakes it once it has sat in a syscall for a tick " +
		"(20 µs up to 10 ms, sysmon backs off when idle), which is the delay measured above. Later runs create no threads: " +
		"they reuse the idle ones the first left, which the OS thread count shows. The preemption wait includes sysmon's " +
		"10 ms time slice (forcePreemptNS) plus its tick."
	return res
}
