package risk

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/orderflow/orderflow"
)

// EventIDPrefix starts the EventID of every decision: "evt_dec_" + order id.
// Deterministic, so a resent decision carries the same event id.
const EventIDPrefix = "evt_dec_"

// Assessor decides orders: the entry point of the risk engine's compute.
// Counters and Champion are required; Router and Challenger are optional
// (without a Challenger, everyone gets the champion and there is no shadow).
type Assessor struct {
	Counters Counters
	// Router sends a user to the Challenger when Router.Challenger(user) is
	// true, else to the Champion. A nil Router sends everyone to the
	// Champion (the Challenger, if set, is still scored as the shadow).
	Router     *Router
	Champion   Scorer
	Challenger Scorer
	// Now stamps DecidedAt; nil means time.Now. Replaceable for tests and
	// replays.
	Now func() time.Time
	// Logger, if set, gets one Debug record per decision with both scores:
	// the shadow is logged, never sent.
	Logger *slog.Logger
}

// Assess observes o in the Counters, scores it with both versions and
// returns the routed version's verdict with the other as the shadow.
// EventType is risk.decided and EventID is EventIDPrefix + o.ID. It fails
// only when the Counters fail (the caller retries the delivery) or a scorer
// returns NaN. Calling it twice for one order does not count the order
// twice, but the second verdict may differ; the engine stores the first and
// resends that one.
func (a *Assessor) Assess(ctx context.Context, order orderflow.Order) (orderflow.RiskDecision, error) {
	o := &order
	snap, err := a.Counters.Observe(ctx, Observation{
		OrderID: o.ID, UserID: o.UserID, DeviceID: o.DeviceID,
		AmountMinor: o.AmountMinor, At: o.CreatedAt,
	})
	if err != nil {
		return orderflow.RiskDecision{}, fmt.Errorf("risk: observe order %s: %w", o.ID, err)
	}
	return a.decide(ctx, o, Extract(o, snap))
}

// Decide scores features already extracted (a replay, a what-if) exactly as
// Assess would, without touching the Counters.
func (a *Assessor) Decide(ctx context.Context, order orderflow.Order, f Features) (orderflow.RiskDecision, error) {
	return a.decide(ctx, &order, f)
}

func (a *Assessor) decide(ctx context.Context, o *orderflow.Order, f Features) (orderflow.RiskDecision, error) {
	routed, shadow := a.Champion, a.Challenger
	if a.Challenger != nil && a.Router != nil && a.Router.Challenger(o.UserID) {
		routed, shadow = a.Challenger, a.Champion
	}
	score := routed.Score(f)
	if math.IsNaN(score) {
		return orderflow.RiskDecision{}, orderflow.Errorf(orderflow.EInternal, "risk: model %s scored order %s NaN", routed.Version(), o.ID)
	}
	score = min(max(score, 0), 1)
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	d := orderflow.RiskDecision{
		OrderID:      o.ID,
		UserID:       o.UserID,
		EventType:    orderflow.EventRiskDecided,
		EventID:      EventIDPrefix + o.ID,
		Decision:     ThresholdsOf(routed).Decide(score),
		Score:        score,
		ModelVersion: routed.Version(),
		DecidedAt:    now().UTC(),
	}
	if shadow != nil {
		// The shadow decides nothing, so a NaN there is recorded as the
		// worst score instead of failing the order.
		s := shadow.Score(f)
		if math.IsNaN(s) {
			s = 1
		}
		d.ShadowVersion, d.ShadowScore = shadow.Version(), min(max(s, 0), 1)
	}
	if a.Logger != nil && a.Logger.Enabled(ctx, slog.LevelDebug) {
		a.Logger.LogAttrs(ctx, slog.LevelDebug, "risk decided",
			slog.String("order_id", d.OrderID), slog.String("model", d.ModelVersion),
			slog.Float64("score", d.Score), slog.String("decision", string(d.Decision)),
			slog.String("shadow_model", d.ShadowVersion), slog.Float64("shadow_score", d.ShadowScore))
	}
	return d, nil
}
