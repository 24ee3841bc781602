package breaker_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/breaker"
	"github.com/orderflow/orderflow/breaker/breakersim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errBoom = errors.New("boom")

// harness drives one breaker on a virtual clock.
type harness struct {
	t     *testing.T
	clock *breakersim.VirtualClock
	at    time.Duration
	b     *breaker.Breaker
	log   []transition
}

type transition struct {
	from, to breaker.State
	reason   breaker.Reason
}

func newHarness(t *testing.T, cfg breaker.Config, opts ...breaker.Option) *harness {
	t.Helper()
	h := &harness{t: t, clock: breakersim.NewVirtualClock(time.Unix(1e9, 0))}
	cfg.OnStateChange = func(from, to breaker.State, s breaker.Snapshot) {
		h.log = append(h.log, transition{from, to, s.Reason})
	}
	h.b = breaker.New(cfg, append([]breaker.Option{breaker.WithClock(h.clock), fixed(0)}, opts...)...)
	return h
}

func (h *harness) advance(d time.Duration) {
	h.at += d
	h.clock.Set(h.at)
}

// calls makes n calls 1ms apart, each with the given result; it returns how
// many were admitted.
func (h *harness) calls(n int, err error, latency time.Duration) (admitted int) {
	for range n {
		h.advance(time.Millisecond)
		t, aerr := h.b.Allow()
		if aerr != nil {
			continue
		}
		admitted++
		t.Done(err, latency)
	}
	return admitted
}

func (h *harness) wantState(want breaker.State, reason breaker.Reason) {
	h.t.Helper()
	s := h.b.Snapshot()
	if s.State != want || s.Reason != reason {
		h.t.Fatalf("state %v (%q), want %v (%q); snapshot %+v", s.State, s.Reason, want, reason, s)
	}
}

func TestTrip(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		cfg    breaker.Config
		run    func(h *harness)
		state  breaker.State
		reason breaker.Reason
	}{
		{"ErrorRate", breaker.Config{ConsecutiveFailures: -1}, func(h *harness) {
			for range 60 { // S F F F F S F F F F …: 80% errors, never K in a row
				h.calls(1, nil, ms)
				h.calls(4, errBoom, ms)
			}
		}, breaker.Open, breaker.ReasonErrorRate},
		{"ErrorRateShortWindow", breaker.Config{ConsecutiveFailures: -1}, func(h *harness) {
			h.calls(9999, nil, ms) // a healthy window, to a bucket boundary…
			for range 40 {         // …then 60% errors for 200ms
				h.calls(2, nil, ms)
				h.calls(3, errBoom, ms)
			}
		}, breaker.Open, breaker.ReasonErrorRate},
		{"ErrorRateBelowThreshold", breaker.Config{ConsecutiveFailures: -1}, func(h *harness) {
			for range 300 {
				h.calls(3, nil, ms)
				h.calls(2, errBoom, ms) // 40%
			}
		}, breaker.Closed, ""},
		{"BelowMinVolume", breaker.Config{ConsecutiveFailures: -1, MinVolume: 100}, func(h *harness) {
			h.calls(99, errBoom, ms)
		}, breaker.Closed, ""},
		{"Consecutive", breaker.Config{ConsecutiveFailures: 5}, func(h *harness) {
			h.calls(500, nil, ms)
			h.calls(5, errBoom, ms)
		}, breaker.Open, breaker.ReasonConsecutiveFailures},
		{"ConsecutiveBrokenBySuccess", breaker.Config{ConsecutiveFailures: 5}, func(h *harness) {
			for range 100 {
				h.calls(4, errBoom, ms)
				h.calls(16, nil, ms)
			}
		}, breaker.Closed, ""},
		{"LatencyOverFloor", breaker.Config{LatencyFloor: 100 * ms}, func(h *harness) {
			h.calls(300, nil, 150*ms)
		}, breaker.Open, breaker.ReasonLatency},
		{"LatencyUnderFloor", breaker.Config{LatencyFloor: 100 * ms}, func(h *harness) {
			h.calls(3000, nil, 90*ms)
		}, breaker.Closed, ""},
		{"LatencyOverBaseline", breaker.Config{LatencyFloor: 10 * ms, LatencyMultiplier: 3}, func(h *harness) {
			h.calls(5000, nil, 5*ms) // baseline ≈ 5ms → threshold ≈ 15ms
			h.calls(1000, nil, 20*ms)
		}, breaker.Open, breaker.ReasonLatency},
		{"LatencyCeiling", breaker.Config{LatencyFloor: time.Second, LatencyCeiling: 100 * ms}, func(h *harness) {
			h.calls(300, nil, 150*ms)
		}, breaker.Open, breaker.ReasonLatency},
		{"CanceledIgnored", breaker.Config{}, func(h *harness) {
			h.calls(1000, context.Canceled, time.Second)
		}, breaker.Closed, ""},
		{"ClassifierSeesLatency", breaker.Config{Classify: func(err error, lat time.Duration) breaker.Outcome {
			if err != nil || lat > 20*ms {
				return breaker.Failure
			}
			return breaker.Success
		}}, func(h *harness) {
			h.calls(20, nil, 30*ms)
		}, breaker.Open, breaker.ReasonConsecutiveFailures},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg)
			tt.run(h)
			h.wantState(tt.state, tt.reason)
		})
	}
}

func TestRecordHTTPStatus(t *testing.T) {
	h := newHarness(t, breaker.Config{ConsecutiveFailures: 3})
	for _, code := range []int{200, 404, 400, 409, 422, 401, 404, 400} {
		h.advance(time.Millisecond)
		tk, err := h.b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		tk.Record(breaker.HTTPStatus(code), time.Millisecond)
	}
	h.wantState(breaker.Closed, "")
	for _, code := range []int{500, 429, 503} {
		tk, _ := h.b.Allow()
		tk.Record(breaker.HTTPStatus(code), time.Millisecond)
	}
	h.wantState(breaker.Open, breaker.ReasonConsecutiveFailures)
}

// open trips h's breaker with consecutive failures.
func (h *harness) open() {
	h.t.Helper()
	for i := 0; i < 100 && h.b.State() != breaker.Open; i++ {
		h.calls(1, errBoom, time.Millisecond)
	}
	if h.b.State() != breaker.Open {
		h.t.Fatalf("breaker did not open: %+v", h.b.Snapshot())
	}
}

func TestHalfOpen(t *testing.T) {
	h := newHarness(t, breaker.Config{Probes: 3, MinOpen: time.Second})
	h.open()
	if _, err := h.b.Allow(); !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("Allow while open: %v, want ErrOpen", err)
	}
	h.advance(time.Second)

	// Exactly three probes are admitted, however many callers ask.
	var probes []breaker.Ticket
	for range 10 {
		if tk, err := h.b.Allow(); err == nil {
			probes = append(probes, tk)
		}
	}
	if len(probes) != 3 {
		t.Fatalf("%d probes admitted, want 3", len(probes))
	}
	h.wantState(breaker.HalfOpen, breaker.ReasonBackoffElapsed)

	// An ignored probe frees its place; two successes are not enough.
	probes[0].Done(context.Canceled, time.Millisecond)
	probes[1].Done(nil, time.Millisecond)
	probes[2].Done(nil, time.Millisecond)
	h.wantState(breaker.HalfOpen, breaker.ReasonBackoffElapsed)
	last, err := h.b.Allow()
	if err != nil {
		t.Fatalf("no probe admitted after an ignored one: %v", err)
	}
	if _, err := h.b.Allow(); err == nil {
		t.Fatal("a fourth concurrent probe was admitted")
	}
	last.Done(nil, time.Millisecond)
	h.wantState(breaker.Closed, breaker.ReasonProbesSucceeded)

	// Any failing probe re-opens.
	h.open()
	h.advance(3 * time.Second)
	p1, _ := h.b.Allow()
	p2, _ := h.b.Allow()
	p1.Done(nil, time.Millisecond)
	p2.Done(errBoom, time.Millisecond)
	h.wantState(breaker.Open, breaker.ReasonProbeFailed)

	// A slow probe counts as a failure even without an error.
	h.advance(5 * time.Second)
	p, _ := h.b.Allow()
	p.Done(nil, time.Second)
	h.wantState(breaker.Open, breaker.ReasonProbeFailed)

	want := []transition{
		{breaker.Closed, breaker.Open, breaker.ReasonConsecutiveFailures},
		{breaker.Open, breaker.HalfOpen, breaker.ReasonBackoffElapsed},
		{breaker.HalfOpen, breaker.Closed, breaker.ReasonProbesSucceeded},
		{breaker.Closed, breaker.Open, breaker.ReasonConsecutiveFailures},
		{breaker.Open, breaker.HalfOpen, breaker.ReasonBackoffElapsed},
		{breaker.HalfOpen, breaker.Open, breaker.ReasonProbeFailed},
		{breaker.Open, breaker.HalfOpen, breaker.ReasonBackoffElapsed},
		{breaker.HalfOpen, breaker.Open, breaker.ReasonProbeFailed},
	}
	if len(h.log) != len(want) {
		t.Fatalf("transitions %v, want %v", h.log, want)
	}
	for i := range want {
		if h.log[i] != want[i] {
			t.Errorf("transition %d = %v, want %v", i, h.log[i], want[i])
		}
	}
}

// A late result from before a transition must not count in the new state.
func TestStaleProbeIgnored(t *testing.T) {
	h := newHarness(t, breaker.Config{Probes: 2})
	h.open()
	h.advance(2 * time.Second)
	stale, _ := h.b.Allow()
	p, _ := h.b.Allow()
	p.Done(errBoom, time.Millisecond) // re-opens
	h.advance(5 * time.Second)
	a, _ := h.b.Allow()
	stale.Done(errBoom, time.Millisecond) // from the previous half-open
	h.wantState(breaker.HalfOpen, breaker.ReasonBackoffElapsed)
	a.Done(nil, time.Millisecond)
}

func TestProbeTimeout(t *testing.T) {
	h := newHarness(t, breaker.Config{Probes: 1, ProbeTimeout: 2 * time.Second})
	h.open()
	h.advance(time.Second)
	if _, err := h.b.Allow(); err != nil { // the probe never reports
		t.Fatal(err)
	}
	h.advance(time.Second)
	if _, err := h.b.Allow(); err == nil {
		t.Fatal("second probe admitted")
	}
	h.wantState(breaker.HalfOpen, breaker.ReasonBackoffElapsed)
	h.advance(time.Second)
	if _, err := h.b.Allow(); err == nil {
		t.Fatal("admitted a call at the probe timeout")
	}
	h.wantState(breaker.Open, breaker.ReasonProbeTimeout)
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name   string
		jitter float64
		want   []time.Duration
	}{
		{"NoJitter", 0, []time.Duration{1, 2, 4, 8, 16, 30, 30}},
		{"HalfJitter", 0.5, []time.Duration{1.1e3, 2.2e3, 4.4e3, 8.8e3, 17.6e3, 30e3, 30e3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, breaker.Config{Jitter: 0.2}, fixed(tt.jitter))
			scale := time.Second
			if tt.jitter != 0 {
				scale = time.Millisecond
			}
			h.open()
			for i, w := range tt.want {
				s := h.b.Snapshot()
				if s.OpenFor != w*scale {
					t.Fatalf("opening %d lasts %v, want %v", i+1, s.OpenFor, w*scale)
				}
				h.advance(s.OpenFor - time.Millisecond)
				if _, err := h.b.Allow(); err == nil {
					t.Fatalf("opening %d: admitted before the backoff elapsed", i+1)
				}
				h.advance(time.Millisecond)
				p, err := h.b.Allow()
				if err != nil {
					t.Fatalf("opening %d: no probe after the backoff: %v", i+1, err)
				}
				p.Done(errBoom, time.Millisecond)
			}
			// Closing resets the doubling.
			h.advance(time.Minute)
			for range 3 {
				p, _ := h.b.Allow()
				p.Done(nil, time.Millisecond)
			}
			h.open()
			if got := h.b.Snapshot().OpenFor; got != tt.want[0]*scale {
				t.Fatalf("after closing, opening lasts %v, want %v", got, tt.want[0]*scale)
			}
		})
	}
}

func TestDryRun(t *testing.T) {
	h := newHarness(t, breaker.Config{DryRun: true})
	if got := h.calls(100, errBoom, time.Millisecond); got != 100 {
		t.Fatalf("dry run admitted %d of 100", got)
	}
	s := h.b.Snapshot()
	if s.State != breaker.Open || !s.DryRun || s.Rejected == 0 {
		t.Fatalf("dry run snapshot %+v: want open, dry run, rejections counted", s)
	}
	// The decisions go on: probes after the backoff close it.
	h.advance(2 * time.Second)
	if got := h.calls(100, nil, time.Millisecond); got != 100 {
		t.Fatalf("dry run admitted %d of 100", got)
	}
	h.wantState(breaker.Closed, breaker.ReasonProbesSucceeded)
}

func TestBaselineLearnedOnlyFromHealthyWindows(t *testing.T) {
	h := newHarness(t, breaker.Config{LatencyFloor: 500 * time.Millisecond, ConsecutiveFailures: -1, ErrorRate: 0.9})
	h.calls(5000, nil, 10*time.Millisecond)
	b1 := h.b.Snapshot().Baseline
	if b1 < 9*time.Millisecond || b1 > 11*time.Millisecond {
		t.Fatalf("baseline %v after healthy 10ms traffic, want ≈10ms", b1)
	}
	// Half the calls failing: unhealthy, not learned, even though slow.
	for range 2000 {
		h.calls(1, nil, 100*time.Millisecond)
		h.calls(1, errBoom, 100*time.Millisecond)
	}
	if b2 := h.b.Snapshot().Baseline; b2 != b1 {
		t.Fatalf("baseline moved %v → %v on unhealthy windows", b1, b2)
	}
}

func TestSnapshot(t *testing.T) {
	h := newHarness(t, breaker.Config{ConsecutiveFailures: -1})
	h.calls(90, nil, 5*time.Millisecond)
	h.calls(10, errBoom, 5*time.Millisecond)
	s := h.b.Snapshot()
	if s.Volume != 100 || s.Failures != 10 || s.ErrorRate != 0.1 {
		t.Errorf("snapshot %+v: want volume 100, failures 10, rate 0.1", s)
	}
	if s.P95 < 4*time.Millisecond || s.P95 > 6*time.Millisecond {
		t.Errorf("p95 %v, want ≈5ms", s.P95)
	}
	if s.Threshold != 50*time.Millisecond {
		t.Errorf("threshold %v, want the 50ms floor", s.Threshold)
	}
	// Buckets older than the window fall out of it.
	h.advance(11 * time.Second)
	if s := h.b.Snapshot(); s.Volume != 0 {
		t.Errorf("volume %d after the window passed, want 0", s.Volume)
	}
}

func TestDo(t *testing.T) {
	h := newHarness(t, breaker.Config{ConsecutiveFailures: 2})
	ctx := context.Background()
	if err := h.b.Do(ctx, func(context.Context) error { return errBoom }); !errors.Is(err, errBoom) {
		t.Fatalf("Do = %v, want the function's error", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic not re-raised")
			}
		}()
		_ = h.b.Do(ctx, func(context.Context) error { panic("boom") })
	}()
	called := false
	err := h.b.Do(ctx, func(context.Context) error { called = true; return nil })
	if !errors.Is(err, breaker.ErrOpen) || called {
		t.Fatalf("Do after two failures = %v, called %v; want ErrOpen, not called", err, called)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := h.b.Do(canceled, func(context.Context) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Do with a done context = %v, want context.Canceled", err)
	}
}

func TestCallbackMayCallBreaker(t *testing.T) {
	var b *breaker.Breaker
	var seen []breaker.State
	b = breaker.New(breaker.Config{ConsecutiveFailures: 1, OnStateChange: func(_, to breaker.State, _ breaker.Snapshot) {
		seen = append(seen, to, b.Snapshot().State)
		_, _ = b.Allow()
	}})
	tk, _ := b.Allow()
	tk.Done(errBoom, time.Millisecond)
	if len(seen) != 2 || seen[0] != breaker.Open || seen[1] != breaker.Open {
		t.Fatalf("callback saw %v, want [open open]", seen)
	}
}

func TestOutcomes(t *testing.T) {
	tests := []struct {
		name string
		got  breaker.Outcome
		want breaker.Outcome
	}{
		{"nil", breaker.DefaultClassify(nil, time.Second), breaker.Success},
		{"error", breaker.DefaultClassify(errBoom, 0), breaker.Failure},
		{"deadline", breaker.DefaultClassify(context.DeadlineExceeded, 0), breaker.Failure},
		{"canceled", breaker.DefaultClassify(context.Canceled, 0), breaker.Ignored},
		{"wrapped canceled", breaker.DefaultClassify(errors.Join(errBoom, context.Canceled), 0), breaker.Ignored},
		{"200", breaker.HTTPStatus(http.StatusOK), breaker.Success},
		{"304", breaker.HTTPStatus(http.StatusNotModified), breaker.Success},
		{"400", breaker.HTTPStatus(http.StatusBadRequest), breaker.Success},
		{"404", breaker.HTTPStatus(http.StatusNotFound), breaker.Success},
		{"429", breaker.HTTPStatus(http.StatusTooManyRequests), breaker.Failure},
		{"500", breaker.HTTPStatus(http.StatusInternalServerError), breaker.Failure},
		{"503", breaker.HTTPStatus(http.StatusServiceUnavailable), breaker.Failure},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestSnapshotLogValue(t *testing.T) {
	h := newHarness(t, breaker.Config{Name: "dep"})
	h.open()
	var buf strings.Builder
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("breaker", "snapshot", h.b.Snapshot())
	for _, want := range []string{`"name":"dep"`, `"state":"open"`, `"reason":"consecutive_failures"`, `"error_rate":1`, `"open_for":1000000000`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line %s lacks %s", buf.String(), want)
		}
	}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{breaker.Closed.String(), "closed"},
		{breaker.Open.String(), "open"},
		{breaker.HalfOpen.String(), "half-open"},
		{breaker.State(7).String(), "state(7)"},
		{breaker.Success.String(), "success"},
		{breaker.Failure.String(), "failure"},
		{breaker.Ignored.String(), "ignored"},
		{breaker.Outcome(12).String(), "outcome(12)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
