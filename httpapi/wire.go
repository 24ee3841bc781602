package httpapi

import (
	"time"

	"github.com/orderflow/orderflow"
)

// TimeFormat is how every time leaves this API: RFC 3339 in UTC with exactly
// nine fractional digits. time.RFC3339Nano trims trailing zeros, which makes
// the width vary and lets a string sort differ from the time sort; API.md
// asks for nanoseconds, so they are always written.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// wireTime marshals as TimeFormat in UTC.
type wireTime time.Time

func (t wireTime) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeFormat)+2)
	b = append(b, '"')
	b = time.Time(t).UTC().AppendFormat(b, TimeFormat)
	return append(b, '"'), nil
}

// orderJSON is the order shape of API.md.
type orderJSON struct {
	ID          string           `json:"id"`
	UserID      string           `json:"user_id"`
	AmountMinor int64            `json:"amount_minor"`
	Currency    string           `json:"currency"`
	Region      string           `json:"region"`
	Items       []orderflow.Item `json:"items"`
	Internal    bool             `json:"internal"`
	IP          string           `json:"ip,omitempty"`
	DeviceID    string           `json:"device_id,omitempty"`
	Status      orderflow.Status `json:"status"`
	Version     int64            `json:"version"`
	Risk        *riskJSON        `json:"risk"`
	CreatedAt   wireTime         `json:"created_at"`
	UpdatedAt   wireTime         `json:"updated_at"`
}

type riskJSON struct {
	Decision     orderflow.Decision `json:"decision"`
	Score        float64            `json:"score"`
	ModelVersion string             `json:"model_version"`
	DecidedAt    wireTime           `json:"decided_at"`
}

func toOrderJSON(o *orderflow.Order) *orderJSON {
	j := &orderJSON{
		ID: o.ID, UserID: o.UserID, AmountMinor: o.AmountMinor, Currency: o.Currency,
		Region: o.Region, Items: o.Items, Internal: o.Internal, IP: o.IP, DeviceID: o.DeviceID,
		Status: o.Status, Version: o.Version,
		CreatedAt: wireTime(o.CreatedAt), UpdatedAt: wireTime(o.UpdatedAt),
	}
	if j.Items == nil {
		j.Items = []orderflow.Item{}
	}
	if o.Risk != nil {
		j.Risk = &riskJSON{Decision: o.Risk.Decision, Score: o.Risk.Score,
			ModelVersion: o.Risk.ModelVersion, DecidedAt: wireTime(o.Risk.DecidedAt)}
	}
	return j
}

// eventJSON is one entry of GET /v1/orders/{id}/events. kind says which
// of the optional members are present: "created" has none; "callback" has
// event_id … outcome; "transition" has from, to, cause and version.
type eventJSON struct {
	Kind string   `json:"kind"`
	At   wireTime `json:"at"`

	EventID      string    `json:"event_id,omitempty"`
	EventType    string    `json:"event_type,omitempty"`
	Decision     string    `json:"decision,omitempty"`
	Score        *float64  `json:"score,omitempty"`
	ModelVersion string    `json:"model_version,omitempty"`
	DecidedAt    *wireTime `json:"decided_at,omitempty"`
	ReceivedAt   *wireTime `json:"received_at,omitempty"`
	// Outcome is "pending" until the callback is applied.
	Outcome string `json:"outcome,omitempty"`

	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Cause   string `json:"cause,omitempty"`
	Version int64  `json:"version,omitempty"`
}

func toEventsJSON(h []orderflow.HistoryEntry) []eventJSON {
	out := make([]eventJSON, 0, len(h))
	for _, e := range h {
		j := eventJSON{Kind: string(e.Kind), At: wireTime(e.At)}
		switch e.Kind {
		case orderflow.HistoryCallback:
			if c := e.Callback; c != nil {
				score, decided, received := c.Score, wireTime(c.DecidedAt), wireTime(e.ReceivedAt)
				j.EventID, j.EventType, j.Decision = c.EventID, string(c.EventType), string(c.Decision)
				j.Score, j.ModelVersion, j.DecidedAt, j.ReceivedAt = &score, c.ModelVersion, &decided, &received
			}
			j.Outcome = string(e.Outcome)
			if j.Outcome == "" {
				j.Outcome = "pending"
			}
		case orderflow.HistoryTransition:
			j.From, j.To, j.Cause, j.Version = string(e.From), string(e.To), e.Cause, e.Version
		}
		out = append(out, j)
	}
	return out
}
