package lab

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
)

func init() {
	Register(Experiment{
		Name:  "defer",
		Title: "cost of defer against a direct call, outside and inside a loop",
		Run:   runDefer,
	})
}

var (
	dfMu      sync.Mutex
	dfCounter int
)

// The functions measured are not inlined, so each iteration pays one real
// call either way and the difference is the defer alone.

//go:noinline
func dfDirect() {
	dfMu.Lock()
	dfCounter++
	dfMu.Unlock()
}

//go:noinline
func dfDeferred() {
	dfMu.Lock()
	defer dfMu.Unlock()
	dfCounter++
}

//go:noinline
func dfBump(i int) { dfCounter += i }

// dfLoopDirect and dfLoopDeferred call dfBump dfLoopLen times; the deferred
// one cannot be open-coded, because the number of defers is not known at
// compile time.
const dfLoopLen = 8

//go:noinline
func dfLoopDirect() {
	for i := range dfLoopLen {
		dfBump(i)
	}
}

//go:noinline
func dfLoopDeferred() {
	for i := range dfLoopLen {
		defer dfBump(i)
	}
}

func runDefer(ctx context.Context, opt Options) (Result, error) {
	p := planFor(opt)
	res := Result{
		Name: "defer",
		Claim: "defer is expensive (tens of nanoseconds per call) and should be avoided on hot paths; " +
			"since Go 1.14 open-coded defers are said to make it nearly free, except inside loops.",
	}
	loop := func(f func()) func(int) {
		return func(n int) {
			for range n {
				f()
			}
		}
	}
	ops := []namedOp{
		{"lock/unlock, direct", loop(dfDirect)},
		{"lock/unlock, defer unlock", loop(dfDeferred)},
		{"8 calls in a loop, direct", loop(dfLoopDirect)},
		{"8 calls in a loop, deferred", loop(dfLoopDeferred)},
	}
	ns, allocs, rounds, err := compareOps(ctx, p, ops)
	if err != nil {
		return res, err
	}
	for i := range ops {
		res.Measurements = append(res.Measurements, ns[i], allocs[i])
	}
	openD := pairedDiffs(rounds[1], rounds[0], 1)
	loopD := pairedDiffs(rounds[3], rounds[2], 1.0/dfLoopLen)
	openM := summarize("defer overhead outside a loop (paired difference)", "ns/defer", openD)
	loopM := summarize("defer overhead inside a loop (paired difference)", "ns/defer", loopD)
	res.Measurements = append(res.Measurements, openM, loopM)
	loopAllocs := allocs[3].Median / dfLoopLen

	openCalls, err1 := calledFuncs(dfDeferred)
	loopCalls, err2 := calledFuncs(dfLoopDeferred)
	codegen := "could not decode the compiled calls"
	if err1 == nil && err2 == nil {
		codegen = fmt.Sprintf("compiled code: the single defer calls runtime.deferproc: %v (open-coded when false); the loop calls runtime.deferproc: %v",
			slices.Contains(openCalls, "runtime.deferproc"), slices.Contains(loopCalls, "runtime.deferproc"))
	}
	runtime.KeepAlive(dfCounter)

	const expensive = 5.0 // ns per defer; "tens of nanoseconds" starts above this
	openClass, o25, o75 := versus(openD, expensive)
	loopClass, l25, l75 := versus(loopD, expensive)
	switch {
	case openClass == "above" && loopClass == "above":
		res.Verdict = Holds
	case openClass == "below" && loopClass == "below":
		res.Verdict = Refuted
	default:
		res.Verdict = Depends
	}
	res.Condition = fmt.Sprintf("%s%s: a defer outside a loop adds %.1f ns (middle half of paired runs %.1f…%.1f: %s the %.0f ns threshold for \"expensive\"), "+
		"a defer inside a loop %.1f ns (%.1f…%.1f: %s) and %.2f allocs each",
		runtime.Version(), raceNote(), openM.Median, o25, o75, openClass, expensive, loopM.Median, l25, l75, loopClass, loopAllocs)
	res.Notes = codegen + ". Paired differences on a shared machine can come out negative: read them as \"about zero\". " +
		"\"Straddling\" means the machine's noise spans the threshold: the run cannot tell."
	return res, nil
}
