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
	openM := pairedDiff("defer overhead outside a loop (paired difference)", "ns/defer", rounds[1], rounds[0], 1)
	loopM := pairedDiff("defer overhead inside a loop (paired difference)", "ns/defer", rounds[3], rounds[2], 1.0/dfLoopLen)
	res.Measurements = append(res.Measurements, openM, loopM)
	open, loopCost := openM.Median, loopM.Median
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
	switch {
	case open >= expensive && loopCost >= expensive:
		res.Verdict = Holds
	case open < expensive && loopCost >= expensive:
		res.Verdict = Depends
	case open < expensive && loopCost < expensive:
		res.Verdict = Refuted
	default:
		res.Verdict = Depends
	}
	res.Condition = fmt.Sprintf("%s%s: a defer outside a loop adds %.1f ns, a defer inside a loop %.1f ns and %.2f allocs each "+
		"(threshold for \"expensive\": %.0f ns)", runtime.Version(), raceNote(), open, loopCost, loopAllocs, expensive)
	res.Notes = codegen + ". Paired differences on a shared machine can come out slightly negative: read them as \"about zero\"."
	return res, nil
}
