package risk

import (
	"context"
	"time"
)

// Observation is what the counters learn from one order.
type Observation struct {
	// OrderID makes observing idempotent: an order already observed (and
	// still inside the long window) is not counted again.
	OrderID string
	UserID  string
	// DeviceID may be empty: the order then adds no device.
	DeviceID    string
	AmountMinor int64
	// At is the order's creation time, not the time of observation: the
	// windows are in order time, so replaying a day of orders in a second
	// gives the counts they had live.
	At time.Time
}

// Snapshot is a user's history as one observation found it, THAT ORDER
// INCLUDED in the window counts and EXCLUDED from the amount history (the
// history is what the order is compared against):
//
//   - Orders1h, Orders24h: observed orders of the user whose time t is in
//     (At − window, At] — this one included, so both are ≥ 1. Orders later
//     than At (observed out of order) do not count.
//   - Devices24h: distinct non-empty device ids among the orders counted in
//     Orders24h.
//   - FirstSeen: the time of the user's earliest remembered order (At for a
//     user seen for the first time).
//   - PriorOrders, MeanLogAmount, StdLogAmount: count, mean and population
//     standard deviation of ln(amount_minor) over the user's earlier
//     remembered orders; zeros when there are none.
//   - Duplicate: OrderID had been observed before; nothing was added, and
//     the counts are as they stand now (later orders may be in them).
//
// A user idle for longer than the implementation's retention is forgotten and
// comes back as new.
type Snapshot struct {
	Orders1h, Orders24h int
	Devices24h          int
	FirstSeen           time.Time
	PriorOrders         int
	MeanLogAmount       float64
	StdLogAmount        float64
	Duplicate           bool
}

// Counters keep per-user velocity windows and amount history. Observe records
// an order and returns the user's Snapshot in one step, so a shared
// implementation needs one round trip per order: in Redis, a Lua script (or
// a MULTI pipeline) doing ZADD NX of the order id scored by its time on the
// user's sorted set, ZREMRANGEBYSCORE of what left the long window, ZCOUNT
// over each window, HINCRBY/HINCRBYFLOAT on a hash of (count, sum, sum of
// squares, first seen) and EXPIRE for the retention.
//
// Implementations are safe for concurrent use. Observe blocks only on I/O,
// and returns the context's error when ctx ends first. Every implementation
// passes the contract suite in package risk/counterstest.
type Counters interface {
	Observe(ctx context.Context, o Observation) (Snapshot, error)
}
