package orderflow

import (
	"context"
	"time"
)

// Event is a domain event written to the outbox in the same transaction as the
// change it reports, and delivered by a bus at least once.
type Event struct {
	// Seq is assigned by the store and grows with insertion. In SQLite (one
	// writer) it also grows with commit order, so a cursor may follow it; in
	// PostgreSQL a lower Seq can commit after a higher one, so readers there
	// track what is unpublished instead of a cursor.
	Seq       int64
	ID        string            // evt_…, unique
	Type      string            // e.g. EventOrderCreated
	OrderID   string            // partition key: one order's events stay in order
	Payload   []byte            // JSON
	Headers   map[string]string // W3C trace context and the like
	CreatedAt time.Time
}

// EventOrderCreated is written with every new order; the risk engine scores it.
const EventOrderCreated = "order.created"

// IdempotencyKey carries a client's Idempotency-Key into CreateOrder.
// RequestHash identifies the parsed request, so a repeat with the same key and
// a different request is a conflict.
type IdempotencyKey struct {
	Key         string
	RequestHash string
	ExpiresAt   time.Time
}

// OrderFilter selects a page of orders, newest first. After, when set, is the
// (created_at, id) of the last order of the previous page.
type OrderFilter struct {
	UserID string
	Status Status
	Limit  int
	After  *OrderCursor
}

// OrderCursor is a keyset position in the (created_at desc, id desc) order.
type OrderCursor struct {
	CreatedAt time.Time
	ID        string
}

// OrderStore keeps orders, their outbox, the callback inbox and idempotency
// keys. Every method is one transaction; a write returns only once it is
// durable. Not-found, conflict and the like come back as *Error with a code.
type OrderStore interface {
	// CreateOrder inserts o (and, when key is set, the idempotency record) and
	// ev in the outbox, in one transaction. With a key already recorded for
	// the same request it returns the order as first created and replay=true;
	// for a different request, a conflict.
	CreateOrder(ctx context.Context, o *Order, ev *Event, key *IdempotencyKey) (stored *Order, replay bool, err error)
	// Order returns one order, or not_found.
	Order(ctx context.Context, id string) (*Order, error)
	// Orders returns a page of orders matching f, newest first.
	Orders(ctx context.Context, f OrderFilter) ([]*Order, error)
	// History returns an order's history, oldest first, or not_found.
	History(ctx context.Context, id string) ([]HistoryEntry, error)
	// Transition applies a client's action (cancel, fulfill) to an order.
	Transition(ctx context.Context, id string, a Action) (*Order, error)
	// RecordCallback records c in the inbox under (order id, event type):
	// Accepted when new, Duplicate when the same verdict is there already, a
	// conflict when a different one is, not_found when the order is unknown.
	RecordCallback(ctx context.Context, c *Callback) (RecordResult, error)
	// ApplyCallbacks applies the order's unapplied inbox entries in arrival
	// order (ApplyInbox) in one transaction, guarded by the order's version.
	// It returns how many entries it settled.
	ApplyCallbacks(ctx context.Context, orderID string) (int, error)
	// UnappliedOrders returns ids of orders with unapplied inbox entries,
	// oldest entry first: the sweeper's work list after a crash.
	UnappliedOrders(ctx context.Context, limit int) ([]string, error)
	// PruneIdempotencyKeys deletes keys that expired before now.
	PruneIdempotencyKeys(ctx context.Context, now time.Time) (int64, error)
	// Ping checks that the store answers (readiness).
	Ping(ctx context.Context) error
	// Close flushes pending writes and releases the store.
	Close() error
}

// Pinger is anything /readyz asks: a store, a bus, a lock backend.
type Pinger interface {
	Ping(ctx context.Context) error
}
