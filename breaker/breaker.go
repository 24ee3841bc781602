package breaker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrOpen is returned by Allow and Do when the breaker rejects a call: it is
// open, or half-open with all its probes in flight.
var ErrOpen = errors.New("breaker: open")

// baselineWeight is the EWMA weight of a new healthy bucket's P95: about the
// last five buckets (seconds, by default) make the baseline.
const baselineWeight = 0.2

// Breaker is a circuit breaker that decides from two signals at once — the
// error rate and the P95 latency of a rolling window — plus a fast path on a
// run of consecutive failures. Its closed-state hot path (Allow, then
// Ticket.Done) takes no lock and allocates nothing; only transitions, bucket
// rotation (once per bucket) and evaluation (a few times per bucket) lock.
//
// A Breaker is safe for concurrent use and starts no goroutine.
type Breaker struct {
	cfg    Config
	clock  Clock
	base   time.Time
	random func() float64

	bucketNanos int64
	evalNanos   int64
	slow        time.Duration // successes at least this slow always read the clock
	classify    Classifier    // nil: DefaultClassify, called directly

	// Lock-free state read by the hot path.
	state         atomic.Uint32
	cur           atomic.Pointer[slot]
	consec        atomic.Uint64
	nextEval      atomic.Int64
	openUntil     atomic.Int64
	probesLeft    atomic.Int64
	probeDeadline atomic.Int64
	rejected      atomic.Uint64

	mu       sync.Mutex // guards the fields below and every transition
	slots    []slot
	past     counts // the full buckets of the window, merged at rotation
	scratch  counts // past + current, merged at evaluation
	baseline time.Duration
	gen      uint32 // bumped at every transition; tickets carry it
	probesOK int
	opens    int // consecutive openings, for the backoff
	openFor  time.Duration
	reason   Reason
	frozen   Snapshot // window figures when the breaker left Closed
	pending  []change

	notifyMu sync.Mutex // held while OnStateChange runs, to keep calls in order
}

type change struct {
	from, to State
	snap     Snapshot
}

// New returns a closed breaker with cfg's policy (zero fields take their
// defaults; see Config).
func New(cfg Config, opts ...Option) *Breaker {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	classify := cfg.Classify
	cfg = cfg.withDefaults()
	b := &Breaker{cfg: cfg, clock: o.clock, random: o.random, classify: classify}
	if b.random == nil {
		b.random = defaultRandom
	}
	if b.clock != nil {
		b.base = b.clock.Now()
	} else {
		b.base = time.Now()
	}
	b.bucketNanos = max(int64(cfg.Window)/int64(cfg.Buckets), 1)
	// Evaluate 20 times per bucket: a decision lags the data by at most
	// 50ms with the default 1s buckets, and a merge (~400 loads) that
	// often costs nothing measurable.
	b.evalNanos = max(b.bucketNanos/20, 1)
	b.slow = cfg.LatencyFloor / 2
	if cfg.LatencyCeiling > 0 {
		b.slow = min(cfg.LatencyFloor, cfg.LatencyCeiling) / 2
	}
	b.slots = make([]slot, cfg.Buckets)
	b.resetWindowLocked(b.now())
	return b
}

// now returns the breaker's time in nanoseconds since New. Without an
// injected clock it reads only the monotonic clock, which is cheaper than
// time.Now.
func (b *Breaker) now() int64 {
	if b.clock == nil {
		return int64(time.Since(b.base))
	}
	return int64(b.clock.Now().Sub(b.base))
}

// Ticket is the permission to make one call. Report its result exactly once
// with Done or Record; a Ticket returned with an error does nothing. The zero
// Ticket is valid and does nothing.
type Ticket struct {
	b    *Breaker
	kind uint8
	gen  uint32
}

const (
	ticketClosed uint8 = iota
	ticketProbe
	ticketShadow // admitted in dry run where a real breaker would reject
)

// Allow asks to make a call. It returns ErrOpen if the breaker rejects it;
// otherwise the Ticket must be completed with the call's result.
func (b *Breaker) Allow() (Ticket, error) {
	if State(b.state.Load()) == Closed {
		return Ticket{b: b}, nil
	}
	return b.allowSlow()
}

func (b *Breaker) allowSlow() (Ticket, error) {
	now := b.now()
	// Reject without the lock while the answer is plainly no: an open
	// breaker sees the full call rate, so this path must be cheap too.
	switch State(b.state.Load()) {
	case Open:
		if now < b.openUntil.Load() {
			return b.reject()
		}
	case HalfOpen:
		if b.probesLeft.Load() <= 0 && now < b.probeDeadline.Load() {
			return b.reject()
		}
	}

	b.mu.Lock()
	t, ok := b.admitLocked(now)
	b.mu.Unlock()
	b.flush()
	if !ok {
		return b.reject()
	}
	return t, nil
}

func (b *Breaker) admitLocked(now int64) (Ticket, bool) {
	switch State(b.state.Load()) {
	case Closed:
		return Ticket{b: b}, true
	case Open:
		if now < b.openUntil.Load() {
			return Ticket{}, false
		}
		b.toHalfOpenLocked(now)
	}
	// Half-open.
	if b.probesLeft.Load() > 0 {
		b.probesLeft.Add(-1)
		return Ticket{b: b, kind: ticketProbe, gen: b.gen}, true
	}
	if now >= b.probeDeadline.Load() {
		b.toOpenLocked(now, ReasonProbeTimeout)
	}
	return Ticket{}, false
}

func (b *Breaker) reject() (Ticket, error) {
	b.rejected.Add(1)
	if b.cfg.DryRun {
		return Ticket{b: b, kind: ticketShadow}, nil
	}
	return Ticket{}, ErrOpen
}

// Done reports the result of the call: err and latency go through
// Config.Classify.
func (t Ticket) Done(err error, latency time.Duration) {
	if t.b == nil {
		return
	}
	if t.b.classify == nil {
		t.Record(DefaultClassify(err, latency), latency)
		return
	}
	t.Record(t.b.classify(err, latency), latency)
}

// Record reports the outcome of the call when the caller has classified it
// itself (for example with HTTPStatus).
func (t Ticket) Record(o Outcome, latency time.Duration) {
	switch {
	case t.b == nil || o > Ignored:
		return
	case t.kind == ticketClosed:
		if o != Ignored {
			t.b.record(o, latency)
		}
	case t.kind == ticketProbe:
		t.b.probeDone(t.gen, o, latency)
	}
}

// record is the closed-state hot path. A fast success costs one atomic add
// on the current bucket's histogram and, one time in sampleEvery, a clock
// read: on a VM the clock (~50ns) costs more than the rest of the path, and a
// fast success carries no news that cannot wait for the next sample. Calls
// that do carry news — failures, and successes slower than half the latency
// floor — always read the clock, so rotation, evaluation and the
// consecutive-failure rule see them at once.
func (b *Breaker) record(o Outcome, latency time.Duration) {
	s := b.cur.Load()
	n := s.hist[bucketOf(latency)].Add(1)
	if o == Failure {
		s.fail.Add(1)
		now := b.now()
		if c := b.consec.Add(1); b.cfg.ConsecutiveFailures > 0 && c >= uint64(b.cfg.ConsecutiveFailures) {
			b.trip(now, ReasonConsecutiveFailures)
			return
		}
		b.tick(s, now)
		return
	}
	if b.consec.Load() != 0 {
		b.consec.Store(0) // only when needed: a store dirties a shared line
	}
	if n%sampleEvery != 0 && latency < b.slow {
		return
	}
	b.tick(s, b.now())
}

// sampleEvery is how often (in calls landing in the same histogram bucket) a
// fast success reads the clock. A power of two.
const sampleEvery = 8

// tick rotates the window when the current bucket has ended and evaluates it
// when an evaluation is due.
func (b *Breaker) tick(s *slot, now int64) {
	if now >= s.end.Load() {
		b.rotate(now)
	}
	if next := b.nextEval.Load(); now >= next && b.nextEval.CompareAndSwap(next, now+b.evalNanos) {
		b.evaluate(now)
	}
}

// rotate starts the bucket that holds now, once, whoever gets there first.
func (b *Breaker) rotate(now int64) *slot {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rotateLocked(now)
}

func (b *Breaker) rotateLocked(now int64) *slot {
	s := b.cur.Load()
	if now < s.end.Load() {
		return s
	}
	ep := now / b.bucketNanos
	n := int64(len(b.slots))
	ns := &b.slots[ep%n]
	ns.reset(ep, (ep+1)*b.bucketNanos)
	b.cur.Store(ns)
	b.past.reset()
	var last *slot // the bucket just before ns, if it is in the window
	for i := range b.slots {
		if o := &b.slots[i]; o != ns && o.epoch > ep-n && o.epoch < ep {
			b.past.add(o)
			if o.epoch == ep-1 {
				last = o
			}
		}
	}
	if State(b.state.Load()) == Closed {
		b.learnLocked(last)
	}
	return ns
}

// learnLocked feeds the baseline with the P95 of the bucket that just ended,
// if that bucket was healthy: enough calls (a tenth of MinVolume per bucket,
// at least 10), an error rate under half the trip point, and a P95 under the
// current threshold. Whole buckets, not the sliding window, are the samples,
// so that each second counts once and a degraded second is refused on its
// own merits instead of being diluted by nine healthy ones: a degraded
// dependency never teaches the breaker that degraded is normal.
func (b *Breaker) learnLocked(last *slot) {
	if last == nil {
		return
	}
	c := &b.scratch
	c.reset()
	c.add(last)
	minVol := max(uint64(b.cfg.MinVolume/b.cfg.Buckets), 10)
	if c.total < minVol || float64(c.fail) >= float64(c.total)*b.cfg.ErrorRate/2 {
		return
	}
	p95 := c.quantile(0.95)
	if p95 >= b.thresholdLocked() {
		return
	}
	if b.baseline == 0 {
		b.baseline = p95
		return
	}
	b.baseline = time.Duration(baselineWeight*float64(p95) + (1-baselineWeight)*float64(b.baseline))
}

func (b *Breaker) thresholdLocked() time.Duration {
	th := max(b.cfg.LatencyFloor, time.Duration(b.cfg.LatencyMultiplier*float64(b.baseline)))
	if b.cfg.LatencyCeiling > 0 {
		th = min(th, b.cfg.LatencyCeiling)
	}
	return th
}

// windowLocked merges the window (full buckets plus the current one) into
// b.scratch.
func (b *Breaker) windowLocked() *counts {
	b.scratch = b.past
	b.scratch.add(b.cur.Load())
	return &b.scratch
}

// evaluate applies the error-rate and latency rules to the window.
func (b *Breaker) evaluate(now int64) {
	b.mu.Lock()
	if State(b.state.Load()) == Closed {
		w := b.windowLocked()
		if w.total >= uint64(b.cfg.MinVolume) {
			switch {
			case float64(w.fail) >= b.cfg.ErrorRate*float64(w.total):
				b.toOpenLocked(now, ReasonErrorRate)
			case w.quantile(0.95) >= b.thresholdLocked():
				b.toOpenLocked(now, ReasonLatency)
			}
		}
	}
	b.mu.Unlock()
	b.flush()
}

func (b *Breaker) trip(now int64, r Reason) {
	b.mu.Lock()
	if State(b.state.Load()) == Closed {
		b.toOpenLocked(now, r)
	}
	b.mu.Unlock()
	b.flush()
}

func (b *Breaker) probeDone(gen uint32, o Outcome, latency time.Duration) {
	now := b.now()
	b.mu.Lock()
	if gen == b.gen && State(b.state.Load()) == HalfOpen {
		switch {
		case o == Ignored:
			b.probesLeft.Add(1) // says nothing: let another call probe
		case o == Failure:
			b.toOpenLocked(now, ReasonProbeFailed)
		case latency >= b.thresholdLocked():
			// A slow success would only re-trip the latency rule once
			// closed: the dependency must look healthy by both signals.
			b.toOpenLocked(now, ReasonProbeFailed)
		default:
			b.probesOK++
			if b.probesOK >= b.cfg.Probes {
				b.toClosedLocked(now)
			}
		}
	}
	b.mu.Unlock()
	b.flush()
}

func (b *Breaker) toOpenLocked(now int64, r Reason) {
	from := State(b.state.Load())
	if from == Closed {
		b.frozen = b.snapshotLocked()
	}
	b.opens++
	d := b.cfg.MinOpen
	for i := 1; i < b.opens && d < b.cfg.MaxOpen; i++ {
		d *= 2
	}
	d = min(time.Duration(float64(min(d, b.cfg.MaxOpen))*(1+b.cfg.Jitter*b.random())), b.cfg.MaxOpen)
	b.openFor = d
	b.openUntil.Store(now + int64(d))
	b.setLocked(from, Open, r)
}

func (b *Breaker) toHalfOpenLocked(now int64) {
	b.probesOK = 0
	b.probesLeft.Store(int64(b.cfg.Probes))
	b.probeDeadline.Store(now + int64(b.cfg.ProbeTimeout))
	b.setLocked(Open, HalfOpen, ReasonBackoffElapsed)
}

func (b *Breaker) toClosedLocked(now int64) {
	b.opens = 0
	b.resetWindowLocked(now)
	b.setLocked(HalfOpen, Closed, ReasonProbesSucceeded)
}

// resetWindowLocked starts an empty window: what the breaker saw before it
// opened says nothing about the dependency that the probes just vouched for.
func (b *Breaker) resetWindowLocked(now int64) {
	for i := range b.slots {
		b.slots[i].reset(-1<<62, 0)
	}
	ep := now / b.bucketNanos
	s := &b.slots[ep%int64(len(b.slots))]
	s.reset(ep, (ep+1)*b.bucketNanos)
	b.cur.Store(s)
	b.past.reset()
	b.consec.Store(0)
	b.nextEval.Store(now + b.evalNanos)
}

func (b *Breaker) setLocked(from, to State, r Reason) {
	b.gen++
	b.reason = r
	b.state.Store(uint32(to))
	if b.cfg.OnStateChange != nil {
		b.pending = append(b.pending, change{from: from, to: to, snap: b.snapshotLocked()})
	}
}

// flush delivers queued transitions to OnStateChange in order, one at a time,
// outside mu. Whoever holds notifyMu drains the queue; a goroutine that finds
// it held leaves its changes to the holder, which looks again after letting
// go so that none is stranded.
func (b *Breaker) flush() {
	if b.cfg.OnStateChange == nil {
		return
	}
	for {
		if !b.notifyMu.TryLock() {
			return
		}
		for {
			b.mu.Lock()
			batch := b.pending
			b.pending = nil
			b.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, c := range batch {
				b.cfg.OnStateChange(c.from, c.to, c.snap)
			}
		}
		b.notifyMu.Unlock()
		b.mu.Lock()
		more := len(b.pending) > 0
		b.mu.Unlock()
		if !more {
			return
		}
	}
}

// State returns the current state (lock-free).
func (b *Breaker) State() State { return State(b.state.Load()) }

// Snapshot returns the breaker's current view. While not closed, the window
// figures are those it had when it left Closed.
func (b *Breaker) Snapshot() Snapshot {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if State(b.state.Load()) == Closed {
		b.rotateLocked(now) // an idle breaker must not report stale buckets
	}
	return b.snapshotLocked()
}

func (b *Breaker) snapshotLocked() Snapshot {
	st := State(b.state.Load())
	s := b.frozen
	if st == Closed {
		w := b.windowLocked()
		s.Volume, s.Failures, s.P95 = w.total, w.fail, w.quantile(0.95)
		s.ErrorRate = 0
		if w.total > 0 {
			s.ErrorRate = float64(w.fail) / float64(w.total)
		}
	}
	s.Name = b.cfg.Name
	s.State = st
	s.Reason = b.reason
	s.DryRun = b.cfg.DryRun
	s.Baseline = b.baseline
	s.Threshold = b.thresholdLocked()
	s.ConsecutiveFailures = b.consec.Load()
	s.Rejected = b.rejected.Load()
	s.OpenFor = b.openFor
	return s
}

// Do runs fn if the breaker allows it, times it with the breaker's clock and
// reports its error through Config.Classify. It returns ErrOpen without
// calling fn when rejected, and ctx's error without asking the breaker when
// ctx is already done (a caller that gave up is no evidence either way). A
// panic in fn counts as a failure and is re-raised.
func (b *Breaker) Do(ctx context.Context, fn func(context.Context) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := b.Allow()
	if err != nil {
		return err
	}
	start := b.now()
	completed := false
	defer func() {
		if !completed {
			t.Record(Failure, time.Duration(b.now()-start))
		}
	}()
	err = fn(ctx)
	completed = true
	t.Done(err, time.Duration(b.now()-start))
	return err
}
