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

	// Lock-free state read by the hot path, written only at transitions,
	// rotations and evaluations.
	state         atomic.Uint32
	cur           atomic.Pointer[slot]
	nextEval      atomic.Int64
	openUntil     atomic.Int64
	probesLeft    atomic.Int64
	probeDeadline atomic.Int64

	// Counters written per call (per failure, per rejection) live on their
	// own cache line, so that writing them does not evict the line every
	// caller reads the state from.
	_        [64]byte
	consec   atomic.Uint64
	rejected atomic.Uint64
	_        [64]byte

	mu       sync.Mutex // guards the fields below and every transition
	slots    []slot
	past     counts // the full buckets of the window, merged at rotation
	prev     *slot  // the last full bucket, if still in the window
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
	if b.state.Load() == uint32(Closed) {
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
	b := t.b
	if b == nil {
		return
	}
	o := Success
	switch {
	case b.classify != nil:
		o = b.classify(err, latency)
	case err != nil:
		o = DefaultClassify(err, latency)
	}
	if t.kind == ticketClosed && o < Ignored {
		b.record(o, latency) // the hot path, without a detour through Record
		return
	}
	t.Record(o, latency)
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
