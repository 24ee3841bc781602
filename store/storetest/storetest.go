// Package storetest is the contract every orderflow.OrderStore keeps: one
// suite, run against each implementation (store/sqlite, store/postgres), so
// they are interchangeable behind the service. It uses only the interface.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// Run runs the contract against stores made by open. open is called once per
// subtest and must return an empty store (no orders, no keys, no inbox rows)
// and arrange for it to be closed with t.Cleanup. Times are checked to the
// nanosecond (API.md: RFC 3339 with nanoseconds).
func Run(t *testing.T, open func(t *testing.T) orderflow.OrderStore) {
	t.Helper()
	groups := []struct {
		name string
		run  func(t *testing.T, open func(t *testing.T) orderflow.OrderStore)
	}{
		{"CreateOrder", testCreateOrder},
		{"Order", testOrder},
		{"Orders", testOrders},
		{"Transition", testTransition},
		{"RecordCallback", testRecordCallback},
		{"ApplyCallbacks", testApplyCallbacks},
		{"UnappliedOrders", testUnappliedOrders},
		{"History", testHistory},
		{"PruneIdempotencyKeys", testPrune},
		{"Ping", testPing},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.run(t, open) })
	}
}

// ctx bounds every call of the suite: a store that hangs fails instead of
// stalling the run.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// base is the creation time of the suite's orders: fixed, in a zone other
// than UTC and with nanoseconds, so conversions and truncations show.
var base = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CST", 8*3600))

// NewOrder returns a valid pending order, version 1, created at createdAt.
func NewOrder(id, userID string, createdAt time.Time) *orderflow.Order {
	return &orderflow.Order{
		ID: id, UserID: userID, AmountMinor: 129900, Currency: "CNY", Region: "east-china",
		Items: []orderflow.Item{{SKU: "sku-1", Qty: 2}, {SKU: "sku-2", Qty: 1}},
		IP:    "203.0.113.7", DeviceID: "d-9",
		Status: orderflow.StatusPendingReview, Version: 1,
		CreatedAt: createdAt, UpdatedAt: createdAt,
	}
}

// NewEvent returns the order.created event of orderID.
func NewEvent(orderID string) *orderflow.Event {
	return &orderflow.Event{
		ID: "evt_" + orderID, Type: orderflow.EventOrderCreated, OrderID: orderID,
		Payload:   []byte(`{"order_id":"` + orderID + `"}`),
		Headers:   map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		CreatedAt: base,
	}
}

// NewCallback returns a callback for orderID with the given verdict.
func NewCallback(orderID string, et orderflow.EventType, d orderflow.Decision, score float64, model string) *orderflow.Callback {
	return &orderflow.Callback{
		EventID: fmt.Sprintf("evt_%s_%s_%s", orderID, et, d), OrderID: orderID, EventType: et,
		Decision: d, Score: score, ModelVersion: model, DecidedAt: base.Add(time.Minute),
	}
}

// mustCreate stores a new order id for userID created at createdAt.
func mustCreate(t *testing.T, s orderflow.OrderStore, id, userID string, createdAt time.Time) *orderflow.Order {
	t.Helper()
	o, replay, err := s.CreateOrder(ctx(t), NewOrder(id, userID, createdAt), NewEvent(id), nil)
	if err != nil || replay {
		t.Fatalf("CreateOrder(%s) = replay %v, err %v; want a new order", id, replay, err)
	}
	return o
}

func mustRecord(t *testing.T, s orderflow.OrderStore, c *orderflow.Callback, want orderflow.RecordResult) {
	t.Helper()
	got, err := s.RecordCallback(ctx(t), c)
	if err != nil || got != want {
		t.Fatalf("RecordCallback(%s %s) = %v, %v; want %v", c.EventType, c.Decision, got, err, want)
	}
}

func mustApply(t *testing.T, s orderflow.OrderStore, id string, want int) {
	t.Helper()
	got, err := s.ApplyCallbacks(ctx(t), id)
	if err != nil || got != want {
		t.Fatalf("ApplyCallbacks(%s) = %d, %v; want %d settled", id, got, err, want)
	}
}

func mustOrder(t *testing.T, s orderflow.OrderStore, id string) *orderflow.Order {
	t.Helper()
	o, err := s.Order(ctx(t), id)
	if err != nil {
		t.Fatalf("Order(%s): %v", id, err)
	}
	return o
}

// wantCode fails unless err carries code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := orderflow.ErrorCode(err); got != code {
		t.Fatalf("%s: error code %q (err %v), want %q", what, got, err, code)
	}
	var e *orderflow.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: %v is not an *orderflow.Error", what, err)
	}
}

// utc returns o with every time in UTC, so orders compare with DeepEqual
// however the store or the test built their times.
func utc(o *orderflow.Order) orderflow.Order {
	c := *o
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	if c.Risk != nil {
		r := *c.Risk
		r.DecidedAt = r.DecidedAt.UTC()
		c.Risk = &r
	}
	return c
}

func equalOrder(t *testing.T, what string, got, want *orderflow.Order) {
	t.Helper()
	if got == nil || want == nil {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
	if g, w := utc(got), utc(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %+v (risk %+v)\nwant %+v (risk %+v)", what, g, g.Risk, w, w.Risk)
	}
}

func wantStatus(t *testing.T, s orderflow.OrderStore, id string, status orderflow.Status, version int64) *orderflow.Order {
	t.Helper()
	o := mustOrder(t, s, id)
	if o.Status != status || o.Version != version {
		t.Fatalf("order %s is %s v%d, want %s v%d", id, o.Status, o.Version, status, version)
	}
	return o
}

func testPing(t *testing.T, open func(t *testing.T) orderflow.OrderStore) {
	if err := open(t).Ping(ctx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}
