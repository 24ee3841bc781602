package engine

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow"
)

// ReviewModelVersion is the model_version of a manual review's callback: a
// person, not a model, decided.
const ReviewModelVersion = "manual"

// ReviewEventIDPrefix starts the event id of a review: deterministic, so a
// resent review carries the same id.
const ReviewEventIDPrefix = "evt_rev_"

// review is a stored manual verdict waiting for a sender.
type review struct {
	cb   orderflow.Callback
	span trace.SpanContext // the request that asked for it
}

// Review stores a reviewer's verdict on an order as a risk.reviewed decision
// and queues it for sending. decision must be approve or reject. The stored
// verdict wins: repeating the same review is accepted again (and sent again,
// which the order service answers as a duplicate); a different verdict for an
// order already reviewed is a conflict. A full queue is resource_exhausted
// (nothing queued; the caller retries); an engine not running is
// unavailable. Once Review returned nil the verdict is stored; it is sent
// with retries for ReviewRetry.Budget, and a failure past that is logged and
// counted (orderflow_risk_reviews_unsent_total) for an operator to resend by
// repeating the request.
func (e *Engine) Review(ctx context.Context, orderID string, decision orderflow.Decision, reviewer string) error {
	if decision != orderflow.DecisionApprove && decision != orderflow.DecisionReject {
		return orderflow.Invalid("decision", "decision must be approve or reject")
	}
	score := 0.0
	if decision == orderflow.DecisionReject {
		score = 1
	}
	d := &orderflow.RiskDecision{
		OrderID: orderID, EventType: orderflow.EventRiskReviewed, EventID: ReviewEventIDPrefix + orderID,
		Decision: decision, Score: score, ModelVersion: ReviewModelVersion, DecidedAt: e.cfg.Now().UTC(),
	}
	cb := d.Callback()
	if err := cb.Validate(); err != nil {
		return err
	}
	// Refuse before storing when nobody would send it; the check is
	// repeated under the lock below, since Run may stop meanwhile.
	e.mu.Lock()
	running := e.reviews != nil
	e.mu.Unlock()
	if !running {
		return orderflow.Errorf(orderflow.EUnavailable, "risk engine is not running")
	}
	stored, err := e.cfg.Decisions.SaveDecision(ctx, d)
	if err != nil {
		return fmt.Errorf("engine: save review %s: %w", orderID, err)
	}
	if stored.Decision != decision {
		return orderflow.Errorf(orderflow.EConflict, "order %s was already reviewed: %s", orderID, stored.Decision)
	}
	e.log.InfoContext(ctx, "review stored", "order_id", orderID, "decision", decision, "reviewer", reviewer)
	r := review{cb: stored.Callback(), span: trace.SpanContextFromContext(ctx)}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.reviews == nil {
		return orderflow.Errorf(orderflow.EUnavailable, "risk engine is not running")
	}
	select {
	case e.reviews <- r:
		return nil
	default:
		return orderflow.Errorf(orderflow.EResourceExhausted, "review queue is full, retry later")
	}
}

// sendReviews is one review sender; it stops when q is closed or ctx ends.
func (e *Engine) sendReviews(ctx context.Context, q <-chan review) {
	for {
		select {
		case <-ctx.Done():
			return
		case r, ok := <-q:
			if !ok {
				return
			}
			e.sendReview(ctx, r)
		}
	}
}

func (e *Engine) sendReview(ctx context.Context, r review) {
	if r.span.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, r.span)
	}
	ctx, span := e.tracer.Start(ctx, "risk.review.send")
	defer span.End()
	if err := e.deliver(ctx, &r.cb, e.cfg.ReviewRetry); err != nil {
		e.m.reviewsUnsent.Inc()
		span.RecordError(err)
		e.log.ErrorContext(ctx, "review not sent: repeat the review to resend it", "order_id", r.cb.OrderID, "err", err)
	}
}
