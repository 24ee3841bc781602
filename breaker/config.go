package breaker

import (
	"math/rand/v2"
	"time"
)

// Config is the breaker's policy. The zero value is a sensible breaker: every
// zero field takes the default named in its comment, and so do out-of-range
// values.
type Config struct {
	// Name identifies the breaker in snapshots and logs.
	Name string

	// Window is the span of the rolling window the error rate and the P95 are
	// computed over (default 10s), split into Buckets buckets (default 10).
	// The window holds Buckets-1 full buckets plus the current partial one.
	Window  time.Duration
	Buckets int

	// MinVolume is the number of counted calls the window must hold before the
	// error-rate and latency rules may trip (default 100): five failures out
	// of seven calls is noise, not an outage.
	MinVolume int

	// ErrorRate trips the breaker when failures/volume reach it (default 0.5,
	// valid range (0,1]) in the window or in a short window (the current
	// bucket, alone or with the last full one) — so that a partial outage
	// behind a long healthy history trips within MinVolume calls, not after
	// most of a window.
	ErrorRate float64

	// The latency rule trips when the window's P95 reaches
	//
	//	min(LatencyCeiling, max(LatencyFloor, LatencyMultiplier × baseline))
	//
	// where baseline is an EWMA of the P95 of healthy buckets (low error rate,
	// P95 under the threshold) that the breaker learns by itself while closed. The floor (default 50ms) keeps a fast
	// dependency from tripping on noise (3 × 1ms is not an outage) and is the
	// threshold until a baseline is learned. The multiplier defaults to 3. The
	// ceiling (default 0: none) bounds a baseline that crept up slowly.
	LatencyFloor      time.Duration
	LatencyMultiplier float64
	LatencyCeiling    time.Duration

	// ConsecutiveFailures trips the breaker at once after that many failures
	// in a row (default 10), without waiting for MinVolume: the fast path for
	// hard outages (at 1,000 calls/s the default trips in ~10ms).
	// Negative disables the rule.
	ConsecutiveFailures int

	// Probes is the number of calls admitted in half-open (default 3). All of
	// them must succeed to close; any failure re-opens.
	Probes int

	// ProbeTimeout re-opens a half-open breaker whose probes have not all
	// reported after this long (default 10s): a probe whose ticket was never
	// completed must not keep the breaker half-open forever.
	ProbeTimeout time.Duration

	// The open state lasts MinOpen (default 1s), doubling at each consecutive
	// opening up to MaxOpen (default 30s), stretched by a random factor in
	// [1, 1+Jitter) (default 0.2) so that many clients do not probe in step.
	// The jitter only lengthens: the nominal backoff is a lower bound. The
	// doubling restarts once the breaker closes.
	MinOpen time.Duration
	MaxOpen time.Duration
	Jitter  float64

	// Classify turns (err, latency) into an Outcome for Ticket.Done and Do
	// (default DefaultClassify).
	Classify Classifier

	// OnStateChange, if set, is called after every transition with the
	// snapshot taken at the moment of the transition. Calls are made one at
	// a time and in the order of the transitions, outside the breaker's lock,
	// from the goroutine that caused the transition (or one that came after):
	// the callback may call the breaker. It should be quick.
	OnStateChange func(from, to State, snap Snapshot)

	// DryRun makes the breaker compute and report every decision — state,
	// transitions, rejections it would make (Snapshot.Rejected) — while never
	// rejecting a call: for rolling out thresholds safely.
	DryRun bool
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Window, 10*time.Second)
	if c.Buckets < 2 {
		c.Buckets = 10
	}
	if c.MinVolume <= 0 {
		c.MinVolume = 100
	}
	if c.ErrorRate <= 0 || c.ErrorRate > 1 {
		c.ErrorRate = 0.5
	}
	def(&c.LatencyFloor, 50*time.Millisecond)
	if c.LatencyMultiplier <= 0 {
		c.LatencyMultiplier = 3
	}
	if c.ConsecutiveFailures == 0 {
		c.ConsecutiveFailures = 10
	}
	if c.Probes <= 0 {
		c.Probes = 3
	}
	def(&c.ProbeTimeout, 10*time.Second)
	def(&c.MinOpen, time.Second)
	def(&c.MaxOpen, 30*time.Second)
	if c.MaxOpen < c.MinOpen {
		c.MaxOpen = c.MinOpen
	}
	if c.Jitter < 0 {
		c.Jitter = 0
	} else if c.Jitter == 0 {
		c.Jitter = 0.2
	}
	if c.Classify == nil {
		c.Classify = DefaultClassify
	}
	return c
}

// Clock is the breaker's source of time. Tests inject a simulated one so
// that scenarios are deterministic; Now must be safe for concurrent use and
// never go backwards.
type Clock interface {
	Now() time.Time
}

// Option changes how a breaker is built, as opposed to its policy (Config).
type Option func(*options)

type options struct {
	clock  Clock
	random func() float64
}

// WithClock makes the breaker read time from c instead of the monotonic
// clock.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithRandom replaces the source of the backoff jitter; f returns values in
// [0,1) and must be safe for concurrent use. Tests pass a fixed sequence.
func WithRandom(f func() float64) Option { return func(o *options) { o.random = f } }

func defaultRandom() float64 { return rand.Float64() }
