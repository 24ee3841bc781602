package breaker

import (
	"log/slog"
	"time"
)

// State is the breaker's position.
type State uint32

const (
	// Closed admits every call and watches the window.
	Closed State = iota
	// Open rejects every call until its backoff elapses.
	Open
	// HalfOpen admits exactly Config.Probes calls and decides on their
	// outcomes.
	HalfOpen
)

// String returns "closed", "open" or "half-open" (the values a metric label
// or a log line should carry).
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "state(" + itoa(int(s)) + ")"
}

// Reason says why the breaker entered its current state.
type Reason string

// Reasons a transition happens.
const (
	ReasonErrorRate           Reason = "error_rate"           // closed → open
	ReasonLatency             Reason = "latency_p95"          // closed → open
	ReasonConsecutiveFailures Reason = "consecutive_failures" // closed → open
	ReasonProbeFailed         Reason = "probe_failed"         // half-open → open
	ReasonProbeTimeout        Reason = "probe_timeout"        // half-open → open
	ReasonBackoffElapsed      Reason = "backoff_elapsed"      // open → half-open
	ReasonProbesSucceeded     Reason = "probes_succeeded"     // half-open → closed
)

// Snapshot is the breaker's view of the dependency at one instant: what the
// OnStateChange callback receives and what Breaker.Snapshot returns. The
// window figures cover the rolling window (for an open breaker, the window
// as it was when it opened).
type Snapshot struct {
	Name   string
	State  State
	Reason Reason // why State was entered; empty before the first transition
	DryRun bool

	Volume    uint64        // counted calls in the window
	Failures  uint64        // failures among them
	ErrorRate float64       // Failures/Volume, 0 for an empty window
	P95       time.Duration // 95th percentile latency of the window, ±12.5%
	Baseline  time.Duration // learned healthy P95 (0 until learned)
	Threshold time.Duration // P95 at which the latency rule trips now

	ConsecutiveFailures uint64        // current run of failures
	Rejected            uint64        // calls rejected since New (in dry run: that would have been)
	OpenFor             time.Duration // length of the current or last open period
}

// LogValue makes a Snapshot a structured slog group.
func (s Snapshot) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", s.Name),
		slog.String("state", s.State.String()),
		slog.String("reason", string(s.Reason)),
		slog.Bool("dry_run", s.DryRun),
		slog.Uint64("volume", s.Volume),
		slog.Uint64("failures", s.Failures),
		slog.Float64("error_rate", s.ErrorRate),
		slog.Duration("p95", s.P95),
		slog.Duration("baseline", s.Baseline),
		slog.Duration("threshold", s.Threshold),
		slog.Uint64("consecutive_failures", s.ConsecutiveFailures),
		slog.Uint64("rejected", s.Rejected),
		slog.Duration("open_for", s.OpenFor),
	)
}
