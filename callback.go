package orderflow

import (
	"math"
	"time"
)

// EventType names what a callback reports. With the order id it is the
// callback's idempotency key.
type EventType string

const (
	// EventRiskDecided is the risk engine's verdict.
	EventRiskDecided EventType = "risk.decided"
	// EventRiskReviewed is a manual reviewer's verdict on an order in review.
	EventRiskReviewed EventType = "risk.reviewed"
)

// Decision is a risk verdict.
type Decision string

const (
	DecisionApprove Decision = "approve"
	DecisionReject  Decision = "reject"
	DecisionReview  Decision = "review"
)

// Action returns the state-machine action a decision asks for.
func (d Decision) Action() Action { return Action(d) }

// Callback is a risk verdict as the risk engine sends it to the order service.
type Callback struct {
	EventID      string    `json:"event_id"`
	OrderID      string    `json:"order_id"`
	EventType    EventType `json:"event_type"`
	Decision     Decision  `json:"decision"`
	Score        float64   `json:"score"`
	ModelVersion string    `json:"model_version"`
	DecidedAt    time.Time `json:"decided_at"`
}

// Validate checks c against API.md, naming the first offending field in
// document order.
func (c *Callback) Validate() error {
	switch {
	case !matchLen(c.EventID, 1, 128, isPrintable):
		return Invalid("event_id", "event_id must be 1-128 printable ASCII characters")
	case !matchLen(c.OrderID, 1, 64, isIDChar):
		return Invalid("order_id", "order_id must be 1-64 of [A-Za-z0-9_-]")
	case c.EventType != EventRiskDecided && c.EventType != EventRiskReviewed:
		return Invalid("event_type", "event_type must be risk.decided or risk.reviewed")
	case c.Decision != DecisionApprove && c.Decision != DecisionReject && c.Decision != DecisionReview:
		return Invalid("decision", "decision must be approve, reject or review")
	case c.Decision == DecisionReview && c.EventType == EventRiskReviewed:
		return Invalid("decision", "decision review is not allowed with risk.reviewed")
	case math.IsNaN(c.Score) || c.Score < 0 || c.Score > 1:
		return Invalid("score", "score must be between 0 and 1")
	case !matchLen(c.ModelVersion, 1, 64, isPrintable):
		return Invalid("model_version", "model_version must be 1-64 printable ASCII characters")
	case c.DecidedAt.IsZero():
		return Invalid("decided_at", "decided_at is required (RFC 3339)")
	}
	return nil
}

// SameVerdict reports whether two callbacks under one idempotency key carry
// the same verdict: decision, score and model version. event_id and decided_at
// do not count, so a sender that retries with fresh ones is still a duplicate.
func (c *Callback) SameVerdict(o *Callback) bool {
	return c.Decision == o.Decision && c.Score == o.Score && c.ModelVersion == o.ModelVersion
}

// RecordResult is what recording a callback in the inbox did.
type RecordResult int

const (
	// Accepted: the callback is new and durably recorded (202).
	Accepted RecordResult = iota + 1
	// Duplicate: the same verdict was recorded under this key before (200).
	Duplicate
)

// Outcome says what applying a recorded callback did to its order.
type Outcome string

const (
	OutcomeApplied            Outcome = "applied"
	OutcomeIgnoredCancelled   Outcome = "ignored_cancelled"
	OutcomeIgnoredNotInReview Outcome = "ignored_not_in_review"
	// OutcomeIgnoredStatus: the order had left pending_review for another reason.
	OutcomeIgnoredStatus Outcome = "ignored_status"
)

// InboxEntry is a recorded callback. Seq orders entries by arrival; Outcome is
// empty until the entry is applied.
type InboxEntry struct {
	Seq        int64
	Callback   Callback
	ReceivedAt time.Time
	Outcome    Outcome
	AppliedAt  time.Time
}

// Change is one transition that applying callbacks made.
type Change struct {
	From, To Status
	Cause    EventType
	Version  int64
	At       time.Time
}

// ApplyInbox applies an order's unapplied inbox entries, given in arrival
// order, through the state machine. It is pure: it returns the new order, the
// entries it settled (with Outcome and AppliedAt set) and the transitions
// made. An entry that must wait (a risk.reviewed whose order's risk.decided has
// not been applied yet) is left out of settled and stays in the inbox; an
// entry after it may still settle, and the waiting one is tried again after
// every entry that settles, so arrival order holds wherever it can.
func ApplyInbox(o Order, pending []InboxEntry, now time.Time) (Order, []InboxEntry, []Change) {
	var settled []InboxEntry
	var changes []Change
	done := make([]bool, len(pending))
	for progress := true; progress; {
		progress = false
		for i := range pending {
			if done[i] {
				continue
			}
			e := pending[i]
			outcome, wait := decide(&o, &e.Callback)
			if wait {
				continue
			}
			if outcome == OutcomeApplied {
				from := o.Status
				to, _, _ := Transition(from, e.Callback.Decision.Action())
				o.Status = to
				o.Version++
				o.UpdatedAt = now
				o.Risk = &Risk{
					Decision:     e.Callback.Decision,
					Score:        e.Callback.Score,
					ModelVersion: e.Callback.ModelVersion,
					DecidedAt:    e.Callback.DecidedAt,
				}
				changes = append(changes, Change{From: from, To: to, Cause: e.Callback.EventType, Version: o.Version, At: now})
			}
			e.Outcome, e.AppliedAt = outcome, now
			settled = append(settled, e)
			done[i], progress = true, true
		}
	}
	return o, settled, changes
}

// decide says what one callback does to o: an outcome, or wait.
func decide(o *Order, c *Callback) (Outcome, bool) {
	switch c.EventType {
	case EventRiskDecided:
		switch o.Status {
		case StatusPendingReview:
			return OutcomeApplied, false
		case StatusCancelled:
			return OutcomeIgnoredCancelled, false
		default:
			return OutcomeIgnoredStatus, false
		}
	case EventRiskReviewed:
		switch {
		case o.Status == StatusInReview:
			return OutcomeApplied, false
		case o.Status == StatusCancelled:
			return OutcomeIgnoredCancelled, false
		case o.Status == StatusPendingReview && o.Risk == nil:
			return "", true // the engine's verdict has not been applied yet
		default:
			return OutcomeIgnoredNotInReview, false
		}
	}
	return OutcomeIgnoredStatus, false
}

// HistoryKind is the kind of an entry in an order's history.
type HistoryKind string

const (
	HistoryCreated    HistoryKind = "created"
	HistoryCallback   HistoryKind = "callback"
	HistoryTransition HistoryKind = "transition"
)

// HistoryEntry is one line of an order's history: its creation, a recorded
// callback (with its outcome once applied) or a transition.
type HistoryEntry struct {
	Kind HistoryKind
	At   time.Time

	// Callback entries.
	Callback   *Callback
	ReceivedAt time.Time
	Outcome    Outcome // empty while not yet applied

	// Transition entries.
	From, To Status
	Cause    string // an event type, or "cancel" / "fulfill"
	Version  int64
}
