package orderflow

import (
	"context"
	"errors"
	"time"
)

// Delivery is one delivery of an outbox event to a consumer group. Attempt
// counts deliveries of this event to this group, starting at 1; a bus that
// loses the count (Redis restarted empty) may start again at 1.
type Delivery struct {
	Event
	Group   string
	Attempt int
}

// Handler processes one delivery. Returning nil acknowledges it; returning an
// error leaves it unacknowledged, to be delivered again after a back-off, until
// the bus's delivery limit moves it to the dead letters. An error marked with
// Permanent goes to the dead letters at once.
type Handler func(ctx context.Context, d Delivery) error

// Consumer delivers a group's events at least once, in order per order id.
type Consumer interface {
	// Consume runs h over the group's events until ctx ends. Several
	// consumers of one group share its events.
	Consume(ctx context.Context, group string, h Handler) error
}

// DeadLetter is an event a group gave up on, kept for an operator.
type DeadLetter struct {
	ID        string
	Group     string
	Event     Event
	Attempts  int
	LastError string
	At        time.Time
}

// DeadLetters lists and redrives what consumers gave up on.
type DeadLetters interface {
	// DeadLetters returns up to limit dead letters, oldest first.
	DeadLetters(ctx context.Context, limit int) ([]DeadLetter, error)
	// Redrive delivers a dead letter to its group again and removes it from
	// the dead letters; not_found when there is no such id.
	Redrive(ctx context.Context, id string) error
}

// ErrPermanent marks a handler error that no retry can fix.
var ErrPermanent = errors.New("permanent failure")

// Permanent marks err so the bus dead-letters the delivery at once.
func Permanent(err error) error { return &permanentError{err} }

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() []error { return []error{e.err, ErrPermanent} }

// RiskDecision is the risk engine's verdict on an order, stored BEFORE it is
// sent so a redelivered event resends the same verdict and never a new one.
type RiskDecision struct {
	OrderID      string
	UserID       string
	EventType    EventType
	EventID      string
	Decision     Decision
	Score        float64
	ModelVersion string
	// Shadow is the verdict of the model version not routed to this user:
	// recorded to compare versions online, never sent.
	ShadowVersion string
	ShadowScore   float64
	DecidedAt     time.Time
}

// Validate checks what every decision store needs to key and store d: an
// order id, an event type and a decision. A nil d fails on order_id.
func (d *RiskDecision) Validate() error {
	switch {
	case d == nil || d.OrderID == "":
		return Invalid("order_id", "order id is required")
	case d.EventType == "":
		return Invalid("event_type", "event type is required")
	case d.Decision == "":
		return Invalid("decision", "decision is required")
	}
	return nil
}

// Callback returns the callback that carries d.
func (d *RiskDecision) Callback() Callback {
	return Callback{
		EventID: d.EventID, OrderID: d.OrderID, EventType: d.EventType,
		Decision: d.Decision, Score: d.Score, ModelVersion: d.ModelVersion, DecidedAt: d.DecidedAt,
	}
}

// LabelledDecision pairs a stored decision with its ground truth.
type LabelledDecision struct {
	RiskDecision
	Fraud bool
}

// DecisionStore keeps the risk engine's decisions and ground-truth labels in
// SQL, never only in Redis, which may lose its data.
type DecisionStore interface {
	// SaveDecision stores d unless a decision for (d.OrderID, d.EventType)
	// exists, and returns the stored one: the first verdict always wins.
	SaveDecision(ctx context.Context, d *RiskDecision) (*RiskDecision, error)
	// SetLabel records ground truth for an order (a chargeback or a confirmed
	// good order); the last label wins.
	SetLabel(ctx context.Context, orderID string, fraud bool) error
	// LabelledDecisions returns risk.decided decisions that have a label.
	LabelledDecisions(ctx context.Context, limit int) ([]LabelledDecision, error)
}
