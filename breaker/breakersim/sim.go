// Package breakersim replays outage scenarios against any circuit breaker,
// in simulated or in real time, so that the breaker package's tests and the
// peer comparison in bench/peers run the very same scenarios and measure them
// the same way.
//
// A scenario is an open-loop load (a fixed call rate, as real clients keep
// sending whatever the breaker does) against a dependency whose latency and
// error rate change in phases. The simulator is a discrete-event loop on one
// goroutine: calls arrive, ask the breaker, and complete after the phase's
// latency; in Virtual mode the clock jumps from event to event, so a 16 s
// scenario at 1,000 calls/s runs in milliseconds and always the same way.
package breakersim

import (
	"container/heap"
	"errors"
	"sync/atomic"
	"time"
)

// ErrDependency is the error a failing simulated dependency returns.
var ErrDependency = errors.New("breakersim: dependency failed")

// Clock is the time source a breaker under test must read (the same method
// set as breaker.Clock).
type Clock interface {
	Now() time.Time
}

// Adapter is one breaker under test, seen from its caller.
type Adapter interface {
	// Allow asks to make a call now. ok=false means the breaker rejected it;
	// otherwise done is called exactly once, when the call completes.
	Allow() (done func(err error, latency time.Duration), ok bool)
}

// Closer is implemented by adapters that hold resources (a ticker goroutine,
// say); Run calls Close when the run is over.
type Closer interface {
	Close()
}

// Factory builds a fresh breaker for one run, reading time from clock. A
// breaker that cannot take a clock reads the real one and can only be run in
// RealTime mode.
type Factory func(clock Clock) Adapter

// Mode says what time the breaker under test sees.
type Mode int

const (
	// Virtual runs in simulated time: deterministic and fast.
	Virtual Mode = iota
	// RealTime paces the events on the wall clock, for breakers that read
	// time.Now themselves. Results then carry the machine's scheduling noise.
	RealTime
)

// Phase is how the dependency behaves from At on.
type Phase struct {
	At        time.Duration
	Latency   time.Duration
	ErrorRate float64 // fraction of calls that fail, spread evenly
}

// Scenario is one load against one misbehaving dependency.
type Scenario struct {
	Name     string
	Rate     int // calls per second, open loop
	Duration time.Duration
	Phases   []Phase // sorted by At; the first starts at 0

	// FaultAt and HealAt delimit the fault the metrics are about.
	FaultAt, HealAt time.Duration
	// Grace is how long after HealAt recovery may take before PassAfterHeal
	// starts counting (e.g. 1s plus one probe round trip).
	Grace time.Duration
}

// Outage is the standard hard-failure scenario: 1,000 calls/s at 5ms, then
// every call fails (after 5ms) from 10s to 13s — the window is full of
// healthy history when the fault starts, the worst case for detection.
func Outage() Scenario {
	return Scenario{
		Name: "outage-100%-errors-3s", Rate: 1000, Duration: 16 * time.Second,
		Phases: []Phase{
			{At: 0, Latency: 5 * time.Millisecond},
			{At: 10 * time.Second, Latency: 5 * time.Millisecond, ErrorRate: 1},
			{At: 13 * time.Second, Latency: 5 * time.Millisecond},
		},
		FaultAt: 10 * time.Second, HealAt: 13 * time.Second,
		Grace: time.Second + 5*time.Millisecond,
	}
}

// Brownout is a partial outage: 1,000 calls/s at 5ms, then 60% of calls
// fail, spread evenly (never more than two in a row, so no consecutive-failure
// rule can help), from 10s to 13s.
func Brownout() Scenario {
	return Scenario{
		Name: "brownout-60%-errors-3s", Rate: 1000, Duration: 16 * time.Second,
		Phases: []Phase{
			{At: 0, Latency: 5 * time.Millisecond},
			{At: 10 * time.Second, Latency: 5 * time.Millisecond, ErrorRate: 0.6},
			{At: 13 * time.Second, Latency: 5 * time.Millisecond},
		},
		FaultAt: 10 * time.Second, HealAt: 13 * time.Second,
		Grace: time.Second + 5*time.Millisecond,
	}
}

// SlowDown is the standard latency scenario: 1,000 calls/s, latency 5ms →
// 200ms from 10s to 13s with no errors at all.
func SlowDown() Scenario {
	return Scenario{
		Name: "latency-5ms-to-200ms-3s", Rate: 1000, Duration: 16 * time.Second,
		Phases: []Phase{
			{At: 0, Latency: 5 * time.Millisecond},
			{At: 10 * time.Second, Latency: 200 * time.Millisecond},
			{At: 13 * time.Second, Latency: 5 * time.Millisecond},
		},
		FaultAt: 10 * time.Second, HealAt: 13 * time.Second,
		Grace: time.Second + 5*time.Millisecond,
	}
}

// Result is what one run measured. Times are from the scenario's start
// unless said otherwise.
type Result struct {
	Scenario string
	Calls    int // calls that arrived
	Admitted int // calls the breaker let through

	// TripAfter is the time from FaultAt to the first rejected call, or -1
	// if the breaker never rejected one during the fault.
	TripAfter time.Duration
	// RejectedBeforeFault counts false positives: rejections before FaultAt.
	RejectedBeforeFault int
	// ReachedDuringFault is the fraction of calls arriving in
	// [FaultAt+1s, HealAt) that the breaker let through to the failing
	// dependency.
	ReachedDuringFault float64
	// FailedCalls counts admitted calls that failed: the errors callers saw
	// from the dependency itself.
	FailedCalls int
	// PassAfterHeal is the fraction of calls arriving in
	// [HealAt+Grace, Duration) that the breaker let through.
	PassAfterHeal float64
	// LastRejectAfterHeal is the time from HealAt to the last rejected call
	// (0 if none was rejected after HealAt): when recovery was complete.
	LastRejectAfterHeal time.Duration
}

// VirtualClock is a Clock that moves only when told to. It is safe for
// concurrent use.
type VirtualClock struct {
	base time.Time
	off  atomic.Int64
}

// NewVirtualClock returns a clock standing at start.
func NewVirtualClock(start time.Time) *VirtualClock { return &VirtualClock{base: start} }

// Now returns the clock's time.
func (c *VirtualClock) Now() time.Time { return c.base.Add(time.Duration(c.off.Load())) }

// Set moves the clock to start+d; it never moves it back.
func (c *VirtualClock) Set(d time.Duration) {
	for {
		old := c.off.Load()
		if int64(d) <= old || c.off.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

type completion struct {
	at   time.Duration
	lat  time.Duration
	err  error
	done func(error, time.Duration)
}

type queue []completion

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].at < q[j].at }
func (q queue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)        { *q = append(*q, x.(completion)) }
func (q *queue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}

// Run plays sc against a breaker built by f and measures it.
func Run(sc Scenario, f Factory, mode Mode) Result {
	start := time.Now()
	r := &run{sc: sc, res: Result{Scenario: sc.Name, TripAfter: -1}}
	var clock Clock = realClock{}
	r.advance = func(t time.Duration) {
		if d := time.Until(start.Add(t)); d > 0 {
			time.Sleep(d)
		}
	}
	if mode == Virtual {
		vc := NewVirtualClock(start)
		clock, r.advance = vc, vc.Set
	}
	r.a = f(clock)
	if c, ok := r.a.(Closer); ok {
		defer c.Close()
	}

	step := time.Second / time.Duration(sc.Rate)
	for i := 0; ; i++ {
		at := time.Duration(i) * step
		if at >= sc.Duration {
			r.complete(-1)
			break
		}
		r.complete(at) // completions due by this arrival go first
		r.arrive(at)
	}
	if r.inFault > 0 {
		r.res.ReachedDuringFault = float64(r.inFaultOK) / float64(r.inFault)
	}
	if r.afterHeal > 0 {
		r.res.PassAfterHeal = float64(r.healedOK) / float64(r.afterHeal)
	}
	return r.res
}

// run is the state of one Run: the event loop's single goroutine owns it.
type run struct {
	sc      Scenario
	a       Adapter
	advance func(time.Duration) // moves (or waits for) the clock

	res                 Result
	pending             queue // calls in flight, by completion time
	inFault, inFaultOK  int
	afterHeal, healedOK int
	errAcc              float64 // spreads a fractional error rate evenly
	phase               int
}

// complete finishes, in time order, the calls due by at (all if at < 0).
func (r *run) complete(at time.Duration) {
	for len(r.pending) > 0 && (at < 0 || r.pending[0].at <= at) {
		c := heap.Pop(&r.pending).(completion)
		r.advance(c.at)
		c.done(c.err, c.lat)
	}
}

// arrive makes the call that arrives at at.
func (r *run) arrive(at time.Duration) {
	r.advance(at)
	for r.phase+1 < len(r.sc.Phases) && r.sc.Phases[r.phase+1].At <= at {
		r.phase++
	}
	ph := r.sc.Phases[r.phase]
	r.res.Calls++
	done, ok := r.a.Allow()
	r.measure(at, ok)
	if !ok {
		return
	}
	r.res.Admitted++
	var err error
	if r.errAcc += ph.ErrorRate; r.errAcc >= 1-1e-9 {
		r.errAcc--
		err = ErrDependency
		r.res.FailedCalls++
	}
	heap.Push(&r.pending, completion{at: at + ph.Latency, lat: ph.Latency, err: err, done: done})
}

// measure accounts for the breaker's answer to the call arriving at at.
func (r *run) measure(at time.Duration, ok bool) {
	sc := &r.sc
	switch {
	case at >= sc.FaultAt+time.Second && at < sc.HealAt:
		r.inFault++
		if ok {
			r.inFaultOK++
		}
	case at >= sc.HealAt+sc.Grace:
		r.afterHeal++
		if ok {
			r.healedOK++
		}
	}
	if ok {
		return
	}
	switch {
	case at < sc.FaultAt:
		r.res.RejectedBeforeFault++
	case at < sc.HealAt:
		if r.res.TripAfter < 0 {
			r.res.TripAfter = at - sc.FaultAt
		}
	default:
		r.res.LastRejectAfterHeal = at - sc.HealAt
	}
}
