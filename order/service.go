// Package order holds the order service's use cases: creating orders with
// their outbox event and idempotency key, reading and listing them, client
// transitions (cancel, fulfill), recording risk callbacks, and applying
// recorded callbacks to orders through a bounded worker pool and a sweeper.
//
// It speaks only the domain's types and *orderflow.Error codes; the transport
// (httpapi) maps those to HTTP. No method starts a goroutine: applying runs on
// the worker pool the caller owns, and sweeping on the goroutine that calls
// Run.
package order

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/workerpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// Defaults for the zero fields of Config.
const (
	DefaultSweepInterval  = 2 * time.Second
	DefaultIdempotencyTTL = 24 * time.Hour
	DefaultMaxInFlight    = 4096
	DefaultApplyTimeout   = 5 * time.Second
	DefaultSweepBatch     = 1000
	DefaultPruneInterval  = time.Minute
	DefaultListLimit      = 50
	MaxListLimit          = 200
)

// applyConflictRetries bounds how often an apply that lost a version race
// (another writer changed the order between read and write) is retried at
// once; past that the sweeper gets it.
const applyConflictRetries = 5

// Config wires a Service. Store and Pool are required; every other zero
// value gets the default named beside it.
type Config struct {
	Store orderflow.OrderStore
	// Pool runs the apply tasks. The service only submits to it with
	// TrySubmit; whoever built it closes it, after the HTTP server has
	// stopped and before the store closes.
	Pool *workerpool.Pool
	// Now is the clock for order times and key expiry (time.Now).
	Now    func() time.Time
	Logger *slog.Logger // slog.Default()
	// SweepInterval is how often Run looks for recorded callbacks that were
	// not applied (the pool was full, or a crash). DefaultSweepInterval.
	SweepInterval time.Duration
	// IdempotencyTTL is how long an Idempotency-Key answers for its first
	// request. DefaultIdempotencyTTL (API.md: 24 h).
	IdempotencyTTL time.Duration
	// MaxInFlight caps creates and callback records in flight at once; past
	// it they fail fast with resource_exhausted (429) instead of queueing on
	// the store. DefaultMaxInFlight.
	MaxInFlight int
	// ApplyTimeout bounds one ApplyCallbacks call. DefaultApplyTimeout.
	ApplyTimeout time.Duration
	// SweepBatch is how many orders one sweep takes up. DefaultSweepBatch.
	SweepBatch int
	// PruneInterval is how often Run deletes expired idempotency keys.
	// DefaultPruneInterval.
	PruneInterval time.Duration
}

// Service is the order service's use cases. Its methods are safe for
// concurrent use.
type Service struct {
	store orderflow.OrderStore
	pool  *workerpool.Pool
	now   func() time.Time
	log   *slog.Logger
	cfg   Config

	ids      idGen
	inflight atomic.Int64

	keysMu sync.Mutex
	keys   map[string]struct{} // idempotency keys whose first request is running

	schedMu sync.Mutex
	// sched holds the orders with an apply running or queued; the value says
	// whether another apply was asked for meanwhile ("dirty").
	sched map[string]bool

	deferred atomic.Int64 // applies left to the sweeper because the pool was full
}

// New checks cfg and returns a Service. It starts nothing: call Run to sweep.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("order: Config.Store is required")
	}
	if cfg.Pool == nil {
		return nil, errors.New("order: Config.Pool is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = DefaultApplyTimeout
	}
	if cfg.SweepBatch <= 0 {
		cfg.SweepBatch = DefaultSweepBatch
	}
	if cfg.PruneInterval <= 0 {
		cfg.PruneInterval = DefaultPruneInterval
	}
	return &Service{
		store: cfg.Store,
		pool:  cfg.Pool,
		now:   cfg.Now,
		log:   cfg.Logger,
		cfg:   cfg,
		keys:  map[string]struct{}{},
		sched: map[string]bool{},
	}, nil
}

// Admit is the back-pressure check the transport makes before a write that
// would lead to an apply (create, record callback): when the apply pool's
// queue is full or MaxInFlight writes are running, it returns
// resource_exhausted so that nothing is queued and the client retries after
// Retry-After. It is a snapshot, not a reservation.
func (s *Service) Admit() error {
	st := s.pool.Stats()
	if st.QueueCap > 0 && st.QueueDepth >= st.QueueCap {
		return orderflow.Errorf(orderflow.EResourceExhausted, "apply queue is full, retry later")
	}
	if s.inflight.Load() >= int64(s.cfg.MaxInFlight) {
		return orderflow.Errorf(orderflow.EResourceExhausted, "too many writes in flight, retry later")
	}
	return nil
}

// enter counts a write in flight, refusing it past MaxInFlight. Unlike Admit
// it is exact: the count and the check are one atomic step.
func (s *Service) enter() (leave func(), err error) {
	if s.inflight.Add(1) > int64(s.cfg.MaxInFlight) {
		s.inflight.Add(-1)
		return nil, orderflow.Errorf(orderflow.EResourceExhausted, "too many writes in flight, retry later")
	}
	return func() { s.inflight.Add(-1) }, nil
}

// Create validates req and stores a new order (pending_review, version 1)
// with its order.created outbox event in one transaction. With a non-empty
// idemKey the request is idempotent for IdempotencyTTL: a repeat of the same
// parsed request returns the first order with replay=true; a different
// request, or a repeat while the first is still running in this process, is
// a conflict.
func (s *Service) Create(ctx context.Context, req orderflow.NewOrder, idemKey string) (o *orderflow.Order, replay bool, err error) {
	if idemKey != "" && !orderflow.ValidIdempotencyKey(idemKey) {
		return nil, false, orderflow.Invalid("Idempotency-Key", "Idempotency-Key must be 1-128 printable ASCII characters")
	}
	if err := req.Validate(); err != nil {
		return nil, false, err
	}
	leave, err := s.enter()
	if err != nil {
		return nil, false, err
	}
	defer leave()

	now := s.now().UTC()
	var key *orderflow.IdempotencyKey
	if idemKey != "" {
		if !s.lockKey(idemKey) {
			return nil, false, orderflow.Errorf(orderflow.EConflict, "a request with this Idempotency-Key is still in flight")
		}
		defer s.unlockKey(idemKey)
		key = &orderflow.IdempotencyKey{Key: idemKey, RequestHash: RequestHash(&req), ExpiresAt: now.Add(s.cfg.IdempotencyTTL)}
	}

	o = &orderflow.Order{
		ID:          s.ids.next("ord_", now),
		UserID:      req.UserID,
		AmountMinor: req.AmountMinor,
		Currency:    req.Currency,
		Region:      req.Region,
		Items:       append([]orderflow.Item(nil), req.Items...),
		Internal:    req.Internal,
		IP:          req.IP,
		DeviceID:    req.DeviceID,
		Status:      orderflow.StatusPendingReview,
		Version:     1,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	payload, err := json.Marshal(o)
	if err != nil {
		return nil, false, orderflow.Wrap(orderflow.EInternal, err, "encode order")
	}
	headers := map[string]string{}
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(headers))
	ev := &orderflow.Event{
		ID:        s.ids.next("evt_", now),
		Type:      orderflow.EventOrderCreated,
		OrderID:   o.ID,
		Payload:   payload,
		Headers:   headers,
		CreatedAt: now,
	}
	stored, replay, err := s.store.CreateOrder(ctx, o, ev, key)
	if err != nil {
		return nil, false, fmt.Errorf("create order: %w", err)
	}
	return stored, replay, nil
}

// RequestHash identifies a parsed create request: the SHA-256 of its
// canonical re-encoding (fields in a fixed order, no insignificant
// whitespace), so two bodies that differ only in layout or key order are the
// same request for Idempotency-Key purposes.
func RequestHash(req *orderflow.NewOrder) string {
	b, _ := json.Marshal(req) // a struct of strings, ints and bools: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (s *Service) lockKey(k string) bool {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	if _, busy := s.keys[k]; busy {
		return false
	}
	s.keys[k] = struct{}{}
	return true
}

func (s *Service) unlockKey(k string) {
	s.keysMu.Lock()
	delete(s.keys, k)
	s.keysMu.Unlock()
}

// Get returns one order, or not_found.
func (s *Service) Get(ctx context.Context, id string) (*orderflow.Order, error) {
	return s.store.Order(ctx, id)
}

// History returns an order's history, oldest first, or not_found.
func (s *Service) History(ctx context.Context, id string) ([]orderflow.HistoryEntry, error) {
	return s.store.History(ctx, id)
}

// Cancel cancels an order (pending_review, in_review or approved). Repeating
// it is a no-op; from any other status it is a conflict.
func (s *Service) Cancel(ctx context.Context, id string) (*orderflow.Order, error) {
	return s.store.Transition(ctx, id, orderflow.ActionCancel)
}

// Fulfill fulfills an approved order. Repeating it is a no-op; from any other
// status it is a conflict.
func (s *Service) Fulfill(ctx context.Context, id string) (*orderflow.Order, error) {
	return s.store.Transition(ctx, id, orderflow.ActionFulfill)
}

// ListParams selects a page of orders. Zero values mean "any" (UserID,
// Status), DefaultListLimit (Limit) and "first page" (Cursor).
type ListParams struct {
	UserID string
	Status orderflow.Status
	Limit  int
	Cursor string
}

// Page is one page of orders, newest first. NextCursor is empty on the last
// page.
type Page struct {
	Orders     []*orderflow.Order
	NextCursor string
}

// List returns a page of orders ordered by (created_at, id) descending. A
// cursor only pages the filters it was issued for; anything else is
// invalid_argument on "cursor".
func (s *Service) List(ctx context.Context, p ListParams) (*Page, error) {
	if p.Status != "" && !p.Status.Valid() {
		return nil, orderflow.Invalid("status", "status must be one of pending_review, in_review, approved, rejected, cancelled, fulfilled")
	}
	if p.Limit == 0 {
		p.Limit = DefaultListLimit
	}
	if p.Limit < 1 || p.Limit > MaxListLimit {
		return nil, orderflow.Invalid("limit", "limit must be 1-200")
	}
	f := orderflow.OrderFilter{UserID: p.UserID, Status: p.Status, Limit: p.Limit + 1}
	if p.Cursor != "" {
		after, err := decodeCursor(p.Cursor, p.UserID, p.Status)
		if err != nil {
			return nil, err
		}
		f.After = after
	}
	orders, err := s.store.Orders(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	page := &Page{Orders: orders}
	if len(orders) > p.Limit {
		// The extra row only says that another page exists.
		page.Orders = orders[:p.Limit]
		page.NextCursor = encodeCursor(page.Orders[p.Limit-1], p.UserID, p.Status)
	}
	return page, nil
}

// RecordCallback durably records a risk callback under (order id, event
// type): Accepted when new (its apply is then scheduled), Duplicate when the
// same verdict was recorded before, conflict for a different verdict,
// not_found for an unknown order. Once it returns Accepted the callback is
// applied eventually, even if the process dies right after.
func (s *Service) RecordCallback(ctx context.Context, c *orderflow.Callback) (orderflow.RecordResult, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	leave, err := s.enter()
	if err != nil {
		return 0, err
	}
	defer leave()
	var (
		res     orderflow.RecordResult
		applied bool
	)
	if ia, ok := s.store.(InlineApplier); ok {
		res, applied, err = ia.RecordAndApplyCallback(ctx, c)
	} else {
		res, err = s.store.RecordCallback(ctx, c)
	}
	if err != nil {
		return 0, fmt.Errorf("record callback: %w", err)
	}
	if res == orderflow.Accepted && !applied {
		s.Schedule(c.OrderID)
	}
	return res, nil
}

// InlineApplier is an order store that can apply a callback's order in the
// same write that records the callback (store/sqlite does): one durable
// write and one commit per callback instead of two, and no trip through the
// apply pool. RecordCallback uses it when the store offers it. applied false
// with Accepted means the apply did not run (it is scheduled as usual); the
// record's outcomes are those of OrderStore.RecordCallback.
type InlineApplier interface {
	RecordAndApplyCallback(ctx context.Context, c *orderflow.Callback) (res orderflow.RecordResult, applied bool, err error)
}
