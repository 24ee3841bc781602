package orderflow_test

import (
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// TestTransitionExhaustive pins the answer for every (status, action) pair, so
// a change to the state machine is a deliberate change to this table.
func TestTransitionExhaustive(t *testing.T) {
	const conflict = orderflow.Status("CONFLICT")
	want := map[orderflow.Status]map[orderflow.Action]orderflow.Status{
		orderflow.StatusPendingReview: {"approve": "approved", "reject": "rejected", "review": "in_review", "cancel": "cancelled", "fulfill": conflict},
		orderflow.StatusInReview:      {"approve": "approved", "reject": "rejected", "review": "in_review", "cancel": "cancelled", "fulfill": conflict},
		orderflow.StatusApproved:      {"approve": "approved", "reject": conflict, "review": conflict, "cancel": "cancelled", "fulfill": "fulfilled"},
		orderflow.StatusRejected:      {"approve": conflict, "reject": "rejected", "review": conflict, "cancel": conflict, "fulfill": conflict},
		orderflow.StatusCancelled:     {"approve": conflict, "reject": conflict, "review": conflict, "cancel": "cancelled", "fulfill": conflict},
		orderflow.StatusFulfilled:     {"approve": conflict, "reject": conflict, "review": conflict, "cancel": conflict, "fulfill": "fulfilled"},
	}
	if len(want) != len(orderflow.Statuses) {
		t.Fatalf("table covers %d statuses, domain has %d", len(want), len(orderflow.Statuses))
	}
	for _, from := range orderflow.Statuses {
		if len(want[from]) != len(orderflow.Actions) {
			t.Fatalf("table row %s covers %d actions, domain has %d", from, len(want[from]), len(orderflow.Actions))
		}
		for _, a := range orderflow.Actions {
			to, changed, err := orderflow.Transition(from, a)
			w := want[from][a]
			if w == conflict {
				if orderflow.ErrorCode(err) != orderflow.EConflict {
					t.Errorf("%s --%s--> got (%s, %v), want conflict", from, a, to, err)
				} else if !strings.Contains(orderflow.ErrorMessage(err), string(from)) {
					t.Errorf("%s --%s--> conflict message %q does not name the status", from, a, orderflow.ErrorMessage(err))
				}
				if to != from || changed {
					t.Errorf("%s --%s--> a conflict must leave the status: got %s changed=%v", from, a, to, changed)
				}
				continue
			}
			if err != nil || to != w || changed != (w != from) {
				t.Errorf("%s --%s--> got (%s, %v, %v), want (%s, %v, nil)", from, a, to, changed, err, w, w != from)
			}
			if from.Terminal() && changed {
				t.Errorf("terminal status %s changed by %s", from, a)
			}
		}
	}
}

func TestTransitionUnknown(t *testing.T) {
	if _, _, err := orderflow.Transition("bogus", orderflow.ActionCancel); orderflow.ErrorCode(err) != orderflow.EInternal {
		t.Errorf("unknown status: got %v, want internal", err)
	}
	if _, _, err := orderflow.Transition(orderflow.StatusApproved, "bogus"); orderflow.ErrorCode(err) != orderflow.EInvalid {
		t.Errorf("unknown action: got %v, want invalid_argument", err)
	}
}

func validOrder() orderflow.NewOrder {
	return orderflow.NewOrder{UserID: "u_1", AmountMinor: 100, Currency: "CNY", Region: "east-china",
		Items: []orderflow.Item{{SKU: "s", Qty: 1}}, IP: "203.0.113.7", DeviceID: "d-9"}
}

func TestNewOrderValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*orderflow.NewOrder)
		field string
	}{
		{"Valid", func(*orderflow.NewOrder) {}, ""},
		{"ValidIPv6", func(n *orderflow.NewOrder) { n.IP = "2001:db8::1" }, ""},
		{"ErrUserIDEmpty", func(n *orderflow.NewOrder) { n.UserID = "" }, "user_id"},
		{"ErrUserIDChars", func(n *orderflow.NewOrder) { n.UserID = "a b" }, "user_id"},
		{"ErrUserIDLong", func(n *orderflow.NewOrder) { n.UserID = strings.Repeat("a", 65) }, "user_id"},
		{"ErrAmountZero", func(n *orderflow.NewOrder) { n.AmountMinor = 0 }, "amount_minor"},
		{"ErrAmountTooLarge", func(n *orderflow.NewOrder) { n.AmountMinor = orderflow.MaxAmountMinor + 1 }, "amount_minor"},
		{"ErrCurrencyLower", func(n *orderflow.NewOrder) { n.Currency = "cny" }, "currency"},
		{"ErrRegionUpper", func(n *orderflow.NewOrder) { n.Region = "East" }, "region"},
		{"ErrItemsEmpty", func(n *orderflow.NewOrder) { n.Items = nil }, "items"},
		{"ErrItemsTooMany", func(n *orderflow.NewOrder) { n.Items = make([]orderflow.Item, 101) }, "items"},
		{"ErrSKUEmpty", func(n *orderflow.NewOrder) { n.Items = append(n.Items, orderflow.Item{Qty: 1}) }, "items[1].sku"},
		{"ErrQtyZero", func(n *orderflow.NewOrder) { n.Items[0].Qty = 0 }, "items[0].qty"},
		{"ErrQtyLarge", func(n *orderflow.NewOrder) { n.Items[0].Qty = 10001 }, "items[0].qty"},
		{"ErrIP", func(n *orderflow.NewOrder) { n.IP = "999.1.1.1" }, "ip"},
		{"ErrDeviceControl", func(n *orderflow.NewOrder) { n.DeviceID = "d\x01" }, "device_id"},
		{"FirstFieldWins", func(n *orderflow.NewOrder) { n.UserID = ""; n.AmountMinor = 0 }, "user_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := validOrder()
			tt.edit(&n)
			err := n.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if orderflow.ErrorCode(err) != orderflow.EInvalid || orderflow.ErrorField(err) != tt.field {
				t.Fatalf("got %v (field %q), want invalid_argument on %q", err, orderflow.ErrorField(err), tt.field)
			}
		})
	}
}

func TestErrorCode(t *testing.T) {
	if got := orderflow.ErrorCode(nil); got != "" {
		t.Errorf("nil: got %q", got)
	}
	if got := orderflow.ErrorCode(errString("boom")); got != orderflow.EInternal {
		t.Errorf("plain error: got %q, want internal", got)
	}
	wrapped := orderflow.Wrap(orderflow.ENotFound, errString("sql: no rows"), "order %s not found", "ord_1")
	if got := orderflow.ErrorCode(wrapped); got != orderflow.ENotFound {
		t.Errorf("wrapped: got %q", got)
	}
	if got := orderflow.ErrorMessage(orderflow.Wrap(orderflow.EInternal, errString("secret dsn"), "db")); strings.Contains(got, "secret") {
		t.Errorf("internal message leaks its cause: %q", got)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func entry(seq int64, et orderflow.EventType, d orderflow.Decision) orderflow.InboxEntry {
	return orderflow.InboxEntry{Seq: seq, Callback: orderflow.Callback{
		EventID: "e", OrderID: "ord_1", EventType: et, Decision: d, Score: 0.5, ModelVersion: "v3",
		DecidedAt: time.Unix(1, 0).UTC(),
	}}
}

func TestApplyInbox(t *testing.T) {
	now := time.Unix(100, 0).UTC()
	dec, rev := orderflow.EventRiskDecided, orderflow.EventRiskReviewed
	tests := []struct {
		name     string
		status   orderflow.Status
		pending  []orderflow.InboxEntry
		want     orderflow.Status
		outcomes []orderflow.Outcome // of settled entries, in settle order
		version  int64
	}{
		{"DecidedApprove", "pending_review", []orderflow.InboxEntry{entry(1, dec, "approve")}, "approved", []orderflow.Outcome{"applied"}, 2},
		{"DecidedReject", "pending_review", []orderflow.InboxEntry{entry(1, dec, "reject")}, "rejected", []orderflow.Outcome{"applied"}, 2},
		{"DecidedOnCancelled", "cancelled", []orderflow.InboxEntry{entry(1, dec, "approve")}, "cancelled", []orderflow.Outcome{"ignored_cancelled"}, 1},
		{"ReviewThenReviewed", "pending_review", []orderflow.InboxEntry{entry(1, dec, "review"), entry(2, rev, "approve")}, "approved", []orderflow.Outcome{"applied", "applied"}, 3},
		{"ReviewedWaitsForDecided", "pending_review", []orderflow.InboxEntry{entry(1, rev, "reject")}, "pending_review", nil, 1},
		{"ReviewedBeforeDecidedInSameBatch", "pending_review", []orderflow.InboxEntry{entry(1, rev, "reject"), entry(2, dec, "review")}, "rejected", []orderflow.Outcome{"applied", "applied"}, 3},
		{"ReviewedNotInReview", "pending_review", []orderflow.InboxEntry{entry(1, dec, "approve"), entry(2, rev, "reject")}, "approved", []orderflow.Outcome{"applied", "ignored_not_in_review"}, 2},
		{"ReviewedOnCancelled", "cancelled", []orderflow.InboxEntry{entry(1, rev, "approve")}, "cancelled", []orderflow.Outcome{"ignored_cancelled"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := orderflow.Order{ID: "ord_1", Status: tt.status, Version: 1}
			got, settled, changes := orderflow.ApplyInbox(o, tt.pending, now)
			if got.Status != tt.want || got.Version != tt.version {
				t.Fatalf("got status %s version %d, want %s %d", got.Status, got.Version, tt.want, tt.version)
			}
			if len(settled) != len(tt.outcomes) {
				t.Fatalf("settled %d entries, want %d", len(settled), len(tt.outcomes))
			}
			applied := 0
			for i, e := range settled {
				if e.Outcome != tt.outcomes[i] || !e.AppliedAt.Equal(now) {
					t.Errorf("entry %d: outcome %q at %v, want %q at %v", i, e.Outcome, e.AppliedAt, tt.outcomes[i], now)
				}
				if e.Outcome == orderflow.OutcomeApplied {
					applied++
				}
			}
			if len(changes) != applied {
				t.Errorf("%d changes for %d applied entries", len(changes), applied)
			}
			if applied > 0 && got.Risk == nil {
				t.Error("risk not set after an applied decision")
			}
		})
	}
}

func TestCallbackValidate(t *testing.T) {
	valid := func() orderflow.Callback {
		return orderflow.Callback{EventID: "evt_1", OrderID: "ord_1", EventType: "risk.decided",
			Decision: "approve", Score: 0.1, ModelVersion: "v3", DecidedAt: time.Now()}
	}
	tests := []struct {
		name  string
		edit  func(*orderflow.Callback)
		field string
	}{
		{"Valid", func(*orderflow.Callback) {}, ""},
		{"ErrEventID", func(c *orderflow.Callback) { c.EventID = "" }, "event_id"},
		{"ErrOrderID", func(c *orderflow.Callback) { c.OrderID = "ord 1" }, "order_id"},
		{"ErrEventType", func(c *orderflow.Callback) { c.EventType = "risk.other" }, "event_type"},
		{"ErrDecision", func(c *orderflow.Callback) { c.Decision = "maybe" }, "decision"},
		{"ErrReviewWithReviewed", func(c *orderflow.Callback) { c.EventType = "risk.reviewed"; c.Decision = "review" }, "decision"},
		{"ErrScoreHigh", func(c *orderflow.Callback) { c.Score = 1.01 }, "score"},
		{"ErrScoreNegative", func(c *orderflow.Callback) { c.Score = -0.1 }, "score"},
		{"ErrModelVersion", func(c *orderflow.Callback) { c.ModelVersion = "" }, "model_version"},
		{"ErrDecidedAt", func(c *orderflow.Callback) { c.DecidedAt = time.Time{} }, "decided_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.edit(&c)
			err := c.Validate()
			if tt.field == "" && err != nil || tt.field != "" && orderflow.ErrorField(err) != tt.field {
				t.Fatalf("got %v, want field %q", err, tt.field)
			}
		})
	}
}
