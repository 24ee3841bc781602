// Package engine is the risk engine's runtime: it consumes order.created
// events from a bus, scores each order, stores the verdict, and delivers it to
// the order service as a signed callback, acknowledging the event only once
// the order service answered 2xx.
//
// # One delivery
//
//  1. Decode the order from the event payload (undecodable: dead letter).
//  2. Assess it (features, routed model version, score, decision).
//  3. SaveDecision, create-if-absent, BEFORE sending: a redelivered event
//     resends the verdict stored the first time, never a fresh one, so the
//     order service never sees two verdicts for one order.
//  4. Send the stored verdict. 2xx: ack. A permanent 4xx (400, 401, 404, 413,
//     415): orderflow.Permanent, the bus dead-letters it. 409: the order
//     service holds a DIFFERENT verdict under the key — our store and theirs
//     disagree, no retry can fix it — dead letter and the conflict counter.
//     429, 503, other 5xx, a network error, an attempt timeout: retry inside
//     the handler with exponential back-off and full jitter capped at
//     Retry.Max (5 s), never sooner than the server's Retry-After, each
//     attempt under its own deadline and all of them under Retry.Budget.
//     When the budget runs out, or the breaker is open, the handler returns
//     an error: the event stays unacknowledged and the bus brings it back
//     after its own back-off. Nothing is lost, nothing is sent twice with a
//     different verdict.
//
// # Manual reviews
//
// Review stores a risk.reviewed verdict (create-if-absent, like the engine's
// own) and queues it for the engine's review senders: a fixed set of
// goroutines that Run starts and stops, never one per request.
//
// # Tracing
//
// The W3C trace context the order service wrote into the event's headers is
// the parent of the delivery's span, so one trace runs from the client's
// create request through scoring to the callback request (whose client span
// the otelhttp transport of the callback client adds) and its apply.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/risk/callbackclient"
)

// DefaultGroup is the consumer group the engine reads order.created with.
const DefaultGroup = "risk"

// Defaults of Retry.
const (
	// DefaultRetryBase is the first back-off's upper bound; it doubles per
	// attempt up to DefaultRetryMax.
	DefaultRetryBase = 50 * time.Millisecond
	// DefaultRetryMax caps one back-off (API.md: callback retry back-off is
	// capped at 5 s).
	DefaultRetryMax = 5 * time.Second
	// DefaultAttemptTimeout bounds one callback request: the design's
	// service-call budget.
	DefaultAttemptTimeout = 800 * time.Millisecond
	// DefaultBudget bounds all attempts of one delivery. Past it the event
	// goes back to the bus, which holds it back with its own back-off
	// instead of pinning a handler slot on one sick order.
	DefaultBudget = 15 * time.Second
	// DefaultReviewBudget bounds the attempts for one manual review; longer,
	// since a review has no bus to fall back on.
	DefaultReviewBudget = 2 * time.Minute
)

// Defaults of the review senders.
const (
	DefaultReviewWorkers = 4
	DefaultReviewQueue   = 1024
)

// Assessor scores an order. *risk.Assessor implements it.
type Assessor interface {
	Assess(ctx context.Context, o orderflow.Order) (orderflow.RiskDecision, error)
}

// Sender makes one attempt to deliver a callback. *callbackclient.Client
// implements it.
type Sender interface {
	Send(ctx context.Context, cb *orderflow.Callback) callbackclient.Result
}

// Retry is the retry policy of one delivery; zero fields take the defaults.
type Retry struct {
	Base    time.Duration
	Max     time.Duration
	Attempt time.Duration
	Budget  time.Duration
}

func (r Retry) withDefaults(budget time.Duration) Retry {
	if r.Base <= 0 {
		r.Base = DefaultRetryBase
	}
	if r.Max <= 0 {
		r.Max = DefaultRetryMax
	}
	if r.Attempt <= 0 {
		r.Attempt = DefaultAttemptTimeout
	}
	if r.Budget <= 0 {
		r.Budget = budget
	}
	return r
}

// Config wires an Engine. Consumer, Assessor, Decisions and Sender are
// required.
type Config struct {
	Consumer  orderflow.Consumer
	Group     string // DefaultGroup
	Assessor  Assessor
	Decisions orderflow.DecisionStore
	Sender    Sender
	// Retry is the policy of an engine delivery; ReviewRetry of a manual
	// review (its Budget defaults to DefaultReviewBudget).
	Retry       Retry
	ReviewRetry Retry
	// ReviewWorkers send queued reviews; ReviewQueue bounds the queue (full
	// means 429 at the edge).
	ReviewWorkers int
	ReviewQueue   int
	Logger        *slog.Logger // slog.Default()
	// TracerProvider makes the engine's spans (otel.GetTracerProvider()).
	TracerProvider trace.TracerProvider
	// Metrics, when set, receives the engine's counters and histograms.
	Metrics *Metrics
	// Rand returns numbers in [0, 1) for the jitter (math/rand/v2).
	Rand func() float64
	// Now is the clock for the pipeline latency (time.Now).
	Now func() time.Time
}

// Engine is the risk engine runtime. Create it with New and call Run.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	m      *Metrics

	mu      sync.Mutex
	reviews chan review // set while Run runs
	ran     bool
	counts  map[string]int64
}

// New checks cfg and returns an Engine. It starts nothing.
func New(cfg Config) (*Engine, error) {
	switch {
	case cfg.Consumer == nil:
		return nil, errors.New("engine: Config.Consumer is required")
	case cfg.Assessor == nil:
		return nil, errors.New("engine: Config.Assessor is required")
	case cfg.Decisions == nil:
		return nil, errors.New("engine: Config.Decisions is required")
	case cfg.Sender == nil:
		return nil, errors.New("engine: Config.Sender is required")
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	cfg.Retry = cfg.Retry.withDefaults(DefaultBudget)
	cfg.ReviewRetry = cfg.ReviewRetry.withDefaults(DefaultReviewBudget)
	if cfg.ReviewWorkers <= 0 {
		cfg.ReviewWorkers = DefaultReviewWorkers
	}
	if cfg.ReviewQueue <= 0 {
		cfg.ReviewQueue = DefaultReviewQueue
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := cfg.Metrics
	if m == nil {
		m = NewMetrics()
	}
	return &Engine{
		cfg:    cfg,
		log:    cfg.Logger,
		tracer: cfg.TracerProvider.Tracer("github.com/orderflow/orderflow/risk/engine"),
		prop:   otel.GetTextMapPropagator(),
		m:      m,
		counts: map[string]int64{},
	}, nil
}

// Run consumes the group's events and sends queued reviews until ctx ends.
// It returns after every goroutine it started has stopped: the consumer has
// finished its handlers (the bus's shutdown grace) and the review senders
// have stopped (a review still queued then stays stored, unsent; see
// Review).
func (e *Engine) Run(ctx context.Context) error {
	q := make(chan review, e.cfg.ReviewQueue)
	e.mu.Lock()
	if e.ran {
		e.mu.Unlock()
		return errors.New("engine: Run called twice")
	}
	e.reviews, e.ran = q, true
	e.mu.Unlock()

	var wg sync.WaitGroup
	for range e.cfg.ReviewWorkers {
		wg.Go(func() { e.sendReviews(ctx, q) })
	}
	err := e.cfg.Consumer.Consume(ctx, e.cfg.Group, e.Handle)
	e.mu.Lock()
	e.reviews = nil // Review refuses from now on; it sends only under mu
	close(q)
	e.mu.Unlock()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("engine: consume %s: %w", e.cfg.Group, err)
	}
	return nil
}

// Handle processes one delivery (see the package documentation). It is the
// orderflow.Handler the engine consumes with; tests call it directly.
func (e *Engine) Handle(ctx context.Context, d orderflow.Delivery) error {
	if d.Type != orderflow.EventOrderCreated {
		return nil // not ours to score: acknowledge and move on
	}
	ctx = e.prop.Extract(ctx, propagation.MapCarrier(d.Headers))
	ctx, span := e.tracer.Start(ctx, "risk.handle "+d.Type,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("orderflow.order_id", d.OrderID),
			attribute.String("orderflow.event_id", d.ID),
			attribute.Int("orderflow.attempt", d.Attempt),
		))
	defer span.End()
	start := time.Now()
	err := e.handle(ctx, d)
	e.m.handleSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

func (e *Engine) handle(ctx context.Context, d orderflow.Delivery) error {
	var o orderflow.Order
	if err := json.Unmarshal(d.Payload, &o); err != nil || o.ID == "" {
		e.m.outcome("undecodable")
		if err == nil {
			err = errors.New("no order id")
		}
		return orderflow.Permanent(fmt.Errorf("engine: event %s: decode order: %w", d.ID, err))
	}
	stored, err := e.decide(ctx, o)
	if err != nil {
		return err
	}
	cb := stored.Callback()
	if err := e.deliver(ctx, &cb, e.cfg.Retry); err != nil {
		return err
	}
	if !d.CreatedAt.IsZero() {
		e.m.pipelineSeconds.Observe(e.cfg.Now().Sub(d.CreatedAt).Seconds())
	}
	return nil
}

// decide scores o and stores the verdict, returning the STORED one: on a
// redelivery that is the first verdict, whatever the fresh score says.
func (e *Engine) decide(ctx context.Context, o orderflow.Order) (*orderflow.RiskDecision, error) {
	ctx, span := e.tracer.Start(ctx, "risk.score")
	defer span.End()
	fresh, err := e.cfg.Assessor.Assess(ctx, o)
	if err != nil {
		span.RecordError(err)
		return nil, fmt.Errorf("engine: assess %s: %w", o.ID, err)
	}
	stored, err := e.cfg.Decisions.SaveDecision(ctx, &fresh)
	if err != nil {
		span.RecordError(err)
		return nil, fmt.Errorf("engine: save decision %s: %w", o.ID, err)
	}
	isNew := stored.EventID == fresh.EventID && stored.DecidedAt.Equal(fresh.DecidedAt)
	if isNew {
		e.m.decisions.WithLabelValues(stored.ModelVersion, string(stored.Decision)).Inc()
		e.mu.Lock()
		e.counts[stored.ModelVersion]++
		e.mu.Unlock()
	}
	span.SetAttributes(
		attribute.String("orderflow.model", stored.ModelVersion),
		attribute.String("orderflow.decision", string(stored.Decision)),
		attribute.Float64("orderflow.score", stored.Score),
		attribute.Bool("orderflow.decision_new", isNew))
	return stored, nil
}

// DecisionCounts returns how many new decisions this engine stored per model
// version since it started (redeliveries not counted).
func (e *Engine) DecisionCounts() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int64, len(e.counts))
	for k, v := range e.counts {
		out[k] = v
	}
	return out
}

// errBudget is returned when the retry budget runs out; the event stays
// unacknowledged.
var errBudget = errors.New("engine: callback retry budget exhausted")

// deliver sends cb until a 2xx, a permanent answer, an open breaker, or the
// end of the policy's budget (or of ctx: shutdown).
func (e *Engine) deliver(ctx context.Context, cb *orderflow.Callback, p Retry) error {
	// The budget hangs off ctx: the bus's handler context, which ends only
	// at shutdown, never a client request.
	bctx, cancel := context.WithTimeout(ctx, p.Budget)
	defer cancel()
	for attempt := 1; ; attempt++ {
		actx, acancel := context.WithTimeout(bctx, p.Attempt)
		res := e.cfg.Sender.Send(actx, cb)
		acancel()
		e.m.callbacks.WithLabelValues(resultLabel(res)).Inc()
		switch res.Class {
		case callbackclient.Delivered:
			return nil
		case callbackclient.Conflict:
			e.log.ErrorContext(ctx, "callback conflict: the order service holds a different verdict",
				"order_id", cb.OrderID, "event_type", cb.EventType, "decision", cb.Decision, "model", cb.ModelVersion)
			return orderflow.Permanent(fmt.Errorf("engine: %s %s: %w", cb.OrderID, cb.EventType, res.Err))
		case callbackclient.Permanent:
			e.log.WarnContext(ctx, "callback refused", "order_id", cb.OrderID, "status", res.Status, "err", res.Err)
			return orderflow.Permanent(fmt.Errorf("engine: %s %s: %w", cb.OrderID, cb.EventType, res.Err))
		case callbackclient.BreakerOpen:
			return fmt.Errorf("engine: %s: %w", cb.OrderID, res.Err)
		}
		wait := backoff(p, attempt, e.cfg.Rand())
		wait = max(wait, res.RetryAfter)
		dl, _ := bctx.Deadline()
		if bctx.Err() != nil || time.Until(dl) < wait {
			if ctx.Err() != nil {
				return fmt.Errorf("engine: %s: %w (last: %w)", cb.OrderID, ctx.Err(), res.Err)
			}
			return fmt.Errorf("engine: %s after %d attempts: %w (last: %w)", cb.OrderID, attempt, errBudget, res.Err)
		}
		e.m.retries.Inc()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-bctx.Done():
			t.Stop()
			return fmt.Errorf("engine: %s after %d attempts: %w (last: %w)", cb.OrderID, attempt, errBudget, res.Err)
		}
	}
}

// backoff is full jitter: uniform in [0, min(Max, Base·2^(attempt-1))), so
// many engines retrying one sick order service spread out instead of
// arriving in waves.
func backoff(p Retry, attempt int, r float64) time.Duration {
	ceil := p.Base
	for i := 1; i < attempt && ceil < p.Max; i++ {
		ceil *= 2
	}
	ceil = min(ceil, p.Max)
	return time.Duration(r * float64(ceil))
}

func resultLabel(r callbackclient.Result) string {
	if r.Class == callbackclient.Delivered && r.Duplicate {
		return "duplicate"
	}
	return r.Class.String()
}
