package orderflow

import (
	"net/netip"
	"strconv"
	"time"
)

// Status is where an order stands in its life. The set is closed (API.md).
type Status string

const (
	StatusPendingReview Status = "pending_review"
	StatusInReview      Status = "in_review"
	StatusApproved      Status = "approved"
	StatusRejected      Status = "rejected"
	StatusCancelled     Status = "cancelled"
	StatusFulfilled     Status = "fulfilled"
)

// Statuses lists every status.
var Statuses = []Status{
	StatusPendingReview, StatusInReview, StatusApproved,
	StatusRejected, StatusCancelled, StatusFulfilled,
}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// Terminal reports whether no action can change s any more.
func (s Status) Terminal() bool {
	return s == StatusRejected || s == StatusCancelled || s == StatusFulfilled
}

// Action is what can happen to an order: a risk verdict or a client's command.
type Action string

const (
	ActionApprove Action = "approve"
	ActionReject  Action = "reject"
	ActionReview  Action = "review"
	ActionCancel  Action = "cancel"
	ActionFulfill Action = "fulfill"
)

// Actions lists every action.
var Actions = []Action{ActionApprove, ActionReject, ActionReview, ActionCancel, ActionFulfill}

// Transition is the order state machine: a pure, total function. For every
// (status, action) pair it returns the next status and whether anything
// changed, or a conflict error that says from which status the action is
// forbidden. Repeating an action whose effect already holds (cancel on a
// cancelled order, fulfill on a fulfilled one, review on an order in review,
// approve on an approved one, reject on a rejected one) is allowed and changes
// nothing, so client retries are safe.
func Transition(from Status, a Action) (to Status, changed bool, err error) {
	switch {
	case !from.Valid():
		return from, false, Errorf(EInternal, "unknown status %q", from)
	case !a.valid():
		return from, false, Errorf(EInvalid, "unknown action %q", a)
	}
	if next, ok := transitions[from][a]; ok {
		return next, next != from, nil
	}
	return from, false, Errorf(EConflict, "cannot %s an order in status %s", a, from)
}

func (a Action) valid() bool {
	for _, v := range Actions {
		if a == v {
			return true
		}
	}
	return false
}

// transitions holds the allowed moves, no-op repeats included. Anything
// absent is a conflict.
var transitions = map[Status]map[Action]Status{
	StatusPendingReview: {
		ActionApprove: StatusApproved,
		ActionReject:  StatusRejected,
		ActionReview:  StatusInReview,
		ActionCancel:  StatusCancelled,
	},
	StatusInReview: {
		ActionApprove: StatusApproved,
		ActionReject:  StatusRejected,
		ActionReview:  StatusInReview,
		ActionCancel:  StatusCancelled,
	},
	StatusApproved: {
		ActionApprove: StatusApproved,
		ActionCancel:  StatusCancelled,
		ActionFulfill: StatusFulfilled,
	},
	StatusRejected:  {ActionReject: StatusRejected},
	StatusCancelled: {ActionCancel: StatusCancelled},
	StatusFulfilled: {ActionFulfill: StatusFulfilled},
}

// Item is one line of an order.
type Item struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"`
}

// Risk is the risk verdict applied to an order.
type Risk struct {
	Decision     Decision  `json:"decision"`
	Score        float64   `json:"score"`
	ModelVersion string    `json:"model_version"`
	DecidedAt    time.Time `json:"decided_at"`
}

// Order is an order as clients see it. Its JSON form is the wire shape of
// API.md, so a snapshot taken for an idempotent replay is the answer itself.
type Order struct {
	ID          string    `json:"id"`
	UserID      string    `json:"user_id"`
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
	Region      string    `json:"region"`
	Items       []Item    `json:"items"`
	Internal    bool      `json:"internal"`
	IP          string    `json:"ip,omitempty"`
	DeviceID    string    `json:"device_id,omitempty"`
	Status      Status    `json:"status"`
	Version     int64     `json:"version"`
	Risk        *Risk     `json:"risk"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Defaulted returns a copy of a new order as a store keeps it: status
// pending_review and version 1 unless set, CreatedAt now unless set,
// UpdatedAt = CreatedAt unless set, every time in UTC. Items and Risk are
// copied, so the caller's order is never aliased by what the store returns.
func (o *Order) Defaulted(now time.Time) *Order {
	c := *o
	c.Items = append([]Item(nil), o.Items...)
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	c.CreatedAt = c.CreatedAt.UTC()
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	c.UpdatedAt = c.UpdatedAt.UTC()
	if c.Status == "" {
		c.Status = StatusPendingReview
	}
	if c.Version == 0 {
		c.Version = 1
	}
	if c.Risk != nil {
		r := *c.Risk
		r.DecidedAt = r.DecidedAt.UTC()
		c.Risk = &r
	}
	return &c
}

// Limits from API.md.
const (
	MaxAmountMinor = 1_000_000_000_000
	MaxItems       = 100
	MaxQty         = 10_000
)

// NewOrder is what a client asks for when it creates an order.
type NewOrder struct {
	UserID      string `json:"user_id"`
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
	Region      string `json:"region"`
	Items       []Item `json:"items"`
	Internal    bool   `json:"internal"`
	IP          string `json:"ip,omitempty"`
	DeviceID    string `json:"device_id,omitempty"`
}

// Validate checks n against API.md and names the first offending field in
// document order.
func (n *NewOrder) Validate() error {
	switch {
	case !matchLen(n.UserID, 1, 64, isIDChar):
		return Invalid("user_id", "user_id must be 1-64 of [A-Za-z0-9_-]")
	case n.AmountMinor < 1 || n.AmountMinor > MaxAmountMinor:
		return Invalid("amount_minor", "amount_minor must be > 0 and <= 10^12")
	case !matchLen(n.Currency, 3, 3, isUpper):
		return Invalid("currency", "currency must be 3 upper-case letters")
	case !matchLen(n.Region, 1, 32, isRegionChar):
		return Invalid("region", "region must be 1-32 of [a-z0-9-]")
	case len(n.Items) < 1 || len(n.Items) > MaxItems:
		return Invalid("items", "items must hold 1-100 entries")
	}
	for i, it := range n.Items {
		if len(it.SKU) < 1 || len(it.SKU) > 64 {
			return Invalid(itemField(i, "sku"), "sku must be 1-64 characters")
		}
		if it.Qty < 1 || it.Qty > MaxQty {
			return Invalid(itemField(i, "qty"), "qty must be 1-10000")
		}
	}
	if n.IP != "" {
		if _, err := netip.ParseAddr(n.IP); err != nil {
			return Invalid("ip", "ip must be an IPv4 or IPv6 address")
		}
	}
	if n.DeviceID != "" && !matchLen(n.DeviceID, 1, 64, isPrintable) {
		return Invalid("device_id", "device_id must be 1-64 printable ASCII characters")
	}
	return nil
}

func itemField(i int, name string) string {
	return "items[" + strconv.Itoa(i) + "]." + name
}

func matchLen(s string, min, max int, ok func(byte) bool) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
func isUpper(c byte) bool      { return c >= 'A' && c <= 'Z' }
func isRegionChar(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' }

// isPrintable accepts printable ASCII (0x20-0x7e): control bytes and
// non-ASCII in identifiers only ever cause trouble in logs and headers.
func isPrintable(c byte) bool { return c >= 0x20 && c <= 0x7e }

// ValidIdempotencyKey reports whether k is 1-128 printable ASCII characters.
func ValidIdempotencyKey(k string) bool { return matchLen(k, 1, 128, isPrintable) }
