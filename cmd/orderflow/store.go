package main

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/order"
)

// maxPendingSpans bounds the span contexts remembered between recording a
// callback and applying it: past it (a crash left many unapplied, or the pool
// is far behind) new ones are not remembered and those applies get a trace of
// their own. Tracing must never become the memory leak.
const maxPendingSpans = 1 << 16

// wiredStore decorates the order store for serve, at the seam between the
// order service and storage, without changing either:
//
//   - after a new order commits it wakes the bus, so the risk engine reads
//     the event at once instead of at its next poll;
//   - it carries the trace across the apply pool: RecordCallback runs under
//     the callback request's span, and the apply runs later on a pool worker
//     whose context has none, so the span context is remembered per order
//     and becomes the parent of the "order.apply" span.
type wiredStore struct {
	orderflow.OrderStore
	notify func() // nil: no bus to wake
	tracer trace.Tracer

	mu      sync.Mutex
	pending map[string]trace.SpanContext
}

func newWiredStore(st orderflow.OrderStore, notify func(), tp trace.TracerProvider) *wiredStore {
	return &wiredStore{
		OrderStore: st, notify: notify,
		tracer:  tp.Tracer("github.com/orderflow/orderflow/cmd/orderflow"),
		pending: map[string]trace.SpanContext{},
	}
}

func (s *wiredStore) CreateOrder(ctx context.Context, o *orderflow.Order, ev *orderflow.Event, key *orderflow.IdempotencyKey) (*orderflow.Order, bool, error) {
	stored, replay, err := s.OrderStore.CreateOrder(ctx, o, ev, key)
	if err == nil && !replay && s.notify != nil {
		s.notify()
	}
	return stored, replay, err
}

func (s *wiredStore) RecordCallback(ctx context.Context, c *orderflow.Callback) (orderflow.RecordResult, error) {
	res, err := s.OrderStore.RecordCallback(ctx, c)
	if err == nil && res == orderflow.Accepted {
		s.remember(ctx, c.OrderID)
	}
	return res, err
}

// remember keeps ctx's span context as the parent of orderID's next apply.
func (s *wiredStore) remember(ctx context.Context, orderID string) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		s.mu.Lock()
		if len(s.pending) < maxPendingSpans {
			s.pending[orderID] = sc
		}
		s.mu.Unlock()
	}
}

// RecordAndApplyCallback is order.InlineApplier when the store is one, so
// the service still finds it through the decorator; its span is the
// "order.apply" of a callback applied inline, a child of the callback
// request's. With a store that cannot, it records only (applied false).
func (s *wiredStore) RecordAndApplyCallback(ctx context.Context, c *orderflow.Callback) (orderflow.RecordResult, bool, error) {
	ia, ok := s.OrderStore.(order.InlineApplier)
	if !ok {
		res, err := s.RecordCallback(ctx, c)
		return res, false, err
	}
	sctx, span := s.tracer.Start(ctx, "order.apply", trace.WithAttributes(
		attribute.String("orderflow.order_id", c.OrderID), attribute.Bool("orderflow.inline", true)))
	defer span.End()
	res, applied, err := ia.RecordAndApplyCallback(sctx, c)
	if err != nil {
		span.RecordError(err)
		return res, applied, err
	}
	if res == orderflow.Accepted && !applied {
		s.remember(ctx, c.OrderID)
	}
	return res, applied, nil
}

func (s *wiredStore) ApplyCallbacks(ctx context.Context, orderID string) (int, error) {
	s.mu.Lock()
	sc, ok := s.pending[orderID]
	delete(s.pending, orderID)
	s.mu.Unlock()
	if ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	ctx, span := s.tracer.Start(ctx, "order.apply", trace.WithAttributes(attribute.String("orderflow.order_id", orderID)))
	defer span.End()
	n, err := s.OrderStore.ApplyCallbacks(ctx, orderID)
	span.SetAttributes(attribute.Int("orderflow.settled", n))
	if err != nil {
		span.RecordError(err)
	}
	return n, err
}
