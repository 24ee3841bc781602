package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Summary is what a run measured. Its JSON form (--json) is for machines:
// the field names are stable, durations are in milliseconds, rates per
// second, and a number that is undefined (an AUC without fraud) is null.
type Summary struct {
	// PacedSeconds is how long the pacer opened slots; Seconds the
	// sending phase, which also waits for the last creates to answer;
	// DrainSeconds the wait after it for the last decisions and labels.
	PacedSeconds float64 `json:"paced_seconds"`
	Seconds      float64 `json:"seconds"`
	DrainSeconds float64 `json:"drain_seconds"`

	// Offered counts the slots the pacer opened at --rate: Sent went out,
	// Dropped found --concurrency requests already in flight and were not
	// sent (open loop: a slow server shows up here and in latency, never as
	// a silently lower offered rate).
	Offered int64 `json:"offered"`
	Sent    int64 `json:"sent"`
	Dropped int64 `json:"dropped_by_client"`
	// Created counts 201 and 200 (idempotent replay) answers; Failed the
	// orders that got no order back after retries.
	Created int64 `json:"created"`
	Failed  int64 `json:"failed"`
	// OfferedRate is Offered per second of pacing (the --rate that was
	// kept); AchievedRate Created per second of the sending phase;
	// DecidedRate Decided per second of the whole run, drain included.
	OfferedRate  float64 `json:"offered_per_second"`
	AchievedRate float64 `json:"achieved_per_second"`
	DecidedRate  float64 `json:"decided_per_second"`

	// Decided counts created orders seen out of pending_review (or with a
	// risk verdict); Undecided those still pending when the run ended;
	// Unwatched those not polled because the watch set was full.
	Decided   int64 `json:"decided"`
	Undecided int64 `json:"undecided"`
	Unwatched int64 `json:"unwatched"`
	// Polls counts GET /v1/orders/{id} requests; Lists GET /v1/orders
	// pages (watch mode list).
	Polls int64 `json:"polls"`
	Lists int64 `json:"lists"`

	// CreateLatency is the round trip of POST /v1/orders, retries included.
	// DecideLatency is created_at to the decision being applied, from the
	// order's own timestamps (updated_at of its first change), so polling
	// adds no error; ObservedLatency is from the 201 to the poll that saw
	// the decision, an upper bound that includes the polling interval.
	CreateLatency   Latency `json:"create_latency_ms"`
	DecideLatency   Latency `json:"decide_latency_ms"`
	ObservedLatency Latency `json:"observed_latency_ms"`

	// Outcomes counts decided orders by the status they were first seen in.
	Outcomes map[string]int64 `json:"outcomes"`
	// Errors counts non-2xx answers and transport failures by error.code
	// ("transport" when no answer came, "http_<status>" for a body without
	// a code, "bad_answer" for a 2xx whose body is not an order), per
	// operation: create, poll, label. Answers that were retried count too.
	Errors map[string]map[string]int64 `json:"errors"`
	// Retries counts requests sent again after 429/503 (Retry-After), 504 or
	// a dropped connection.
	Retries int64 `json:"retries"`

	// Models measures each risk.model_version against the hidden truth.
	Models map[string]ModelSummary `json:"models"`
	Labels LabelSummary            `json:"labels"`
	// Adversaries reports the interactive adversarial-retry users.
	Adversaries AdversarySummary `json:"adversaries"`
}

// Latency summarises a histogram in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// ModelSummary measures one model version client-side. Accuracy counts a
// decision right when it approves a legitimate order or does not approve a
// fraudulent one (risk.Evaluate's rule); AUC ranks the scores against the
// truth. Both are nil when undefined.
type ModelSummary struct {
	Decided  int64    `json:"decided"`
	Fraud    int64    `json:"fraud"`
	Accuracy *float64 `json:"accuracy"`
	AUC      *float64 `json:"auc"`
}

// LabelSummary counts the ground-truth labels posted to /v1/risk/labels.
// Pending were still waiting for --label-delay, or in flight, when the run
// ended; Skipped did not fit the bounded queue. Every decided order (and
// every unwatched one) is in exactly one of the four.
type LabelSummary struct {
	Sent    int64 `json:"sent"`
	Failed  int64 `json:"failed"`
	Pending int64 `json:"pending"`
	Skipped int64 `json:"skipped"`
}

// AdversarySummary reports the adversarial-retry users, each of whom
// retries a rejected or in-review order a little cheaper until it is
// approved or --adversary-tries run out. Approved is how many got through,
// the number a risk team wants at zero; ApprovedAfterRetry those of them
// that were stopped first and then slipped through by retrying, which is
// the weakness this user probes (a first attempt approved is a plain miss).
type AdversarySummary struct {
	Users              int64 `json:"users"`
	Attempts           int64 `json:"attempts"`
	Approved           int64 `json:"approved"`
	ApprovedAfterRetry int64 `json:"approved_after_retry"`
	GaveUp             int64 `json:"gave_up"`
	Unfinished         int64 `json:"unfinished"`
}

func latencyOf(h *histogram) Latency {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Latency{
		Count: int64(h.n),
		P50:   ms(h.quantile(0.50)), P95: ms(h.quantile(0.95)), P99: ms(h.quantile(0.99)),
		Max: ms(h.max),
	}
}

// WriteText prints s for people: one topic a line, rates and ratios with
// the counts they come from.
func (s *Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "duration   %.1fs pacing, %.1fs until the last create answered, + %.1fs draining\n", s.PacedSeconds, s.Seconds, s.DrainSeconds)
	fmt.Fprintf(&b, "offered    %d (%.1f/s)  sent %d  dropped by client %d\n", s.Offered, s.OfferedRate, s.Sent, s.Dropped)
	fmt.Fprintf(&b, "created    %d (%.1f/s)  failed %d  retries %d\n", s.Created, s.AchievedRate, s.Failed, s.Retries)
	fmt.Fprintf(&b, "decided    %d (%.1f/s)  undecided %d  unwatched %d  polls %d", s.Decided, s.DecidedRate, s.Undecided, s.Unwatched, s.Polls)
	if s.Lists > 0 {
		fmt.Fprintf(&b, "  lists %d", s.Lists)
	}
	b.WriteByte('\n')
	writeLatency(&b, "create", s.CreateLatency)
	writeLatency(&b, "decide", s.DecideLatency)
	writeLatency(&b, "observed", s.ObservedLatency)
	fmt.Fprintf(&b, "outcomes  %s\n", counts(s.Outcomes))
	for _, op := range slices.Sorted(maps.Keys(s.Errors)) {
		fmt.Fprintf(&b, "errors    %s: %s\n", op, counts(s.Errors[op]))
	}
	for _, v := range slices.Sorted(maps.Keys(s.Models)) {
		m := s.Models[v]
		fmt.Fprintf(&b, "model     %s: decided %d, fraud %d, accuracy %s, AUC %s\n", v, m.Decided, m.Fraud, ratio(m.Accuracy), ratio(m.AUC))
	}
	fmt.Fprintf(&b, "labels    sent %d  failed %d  pending %d  skipped %d\n", s.Labels.Sent, s.Labels.Failed, s.Labels.Pending, s.Labels.Skipped)
	a := s.Adversaries
	fmt.Fprintf(&b, "adversary users %d  attempts %d  approved %d (after a retry %d)  gave up %d  unfinished %d\n",
		a.Users, a.Attempts, a.Approved, a.ApprovedAfterRetry, a.GaveUp, a.Unfinished)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeLatency(b *strings.Builder, name string, l Latency) {
	fmt.Fprintf(b, "%-9s  p50 %.1fms  p95 %.1fms  p99 %.1fms  max %.1fms  (n=%d)\n", name, l.P50, l.P95, l.P99, l.Max, l.Count)
}

func counts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func ratio(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", *p)
}
