// Package riskapi is the HTTP transport of the risk engine: the risk
// listener's routes of API.md (labels, manual reviews, the model rollout) and
// the operator's admin routes (dead letters, orders stuck waiting for a
// verdict). It returns handlers by ServeMux pattern, to be mounted through
// httpapi's PublicConfig.Extra and AdminConfig.Extra, which instrument them
// and bound them with the deadline middleware like every other route. Errors
// are answered with httpapi.WriteError, in the one error shape of API.md.
// Handlers start no goroutines: a review is sent by the engine's own senders.
package riskapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi"
	"github.com/orderflow/orderflow/risk/engine"
)

// Reviewer stores and sends a manual verdict; *engine.Engine implements it.
type Reviewer interface {
	Review(ctx context.Context, orderID string, decision orderflow.Decision, reviewer string) error
}

// Labeler records ground truth; orderflow.DecisionStore implements it.
type Labeler interface {
	SetLabel(ctx context.Context, orderID string, fraud bool) error
}

// Rollout reports and moves the model rollout; *engine.Rollout implements it.
type Rollout interface {
	Status(ctx context.Context) (*engine.RolloutStatus, error)
	Act(ctx context.Context, action, challenger, reason string) (*engine.RolloutStatus, error)
}

// Config wires the risk listener's routes; every field is required.
type Config struct {
	Reviewer Reviewer
	Labels   Labeler
	Rollout  Rollout
}

// Routes returns the risk listener's handlers by ServeMux pattern.
func Routes(cfg Config) map[string]http.Handler {
	return map[string]http.Handler{
		"POST /v1/risk/labels":  http.HandlerFunc(cfg.label),
		"POST /v1/risk/reviews": http.HandlerFunc(cfg.review),
		"GET /v1/risk/rollout":  http.HandlerFunc(cfg.rolloutStatus),
		"POST /v1/risk/rollout": http.HandlerFunc(cfg.rolloutAct),
	}
}

type accepted struct {
	Status string `json:"status"`
}

// label: POST /v1/risk/labels {"order_id", "fraud"} → 202.
func (cfg Config) label(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OrderID *string `json:"order_id"`
		Fraud   *bool   `json:"fraud"`
	}
	if err := readJSON(r, &req); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	switch {
	case req.OrderID == nil || !validID(*req.OrderID):
		httpapi.WriteError(w, orderflow.Invalid("order_id", "order_id must be 1-64 of [A-Za-z0-9_-]"))
		return
	case req.Fraud == nil:
		httpapi.WriteError(w, orderflow.Invalid("fraud", "fraud is required (true or false)"))
		return
	}
	if err := cfg.Labels.SetLabel(r.Context(), *req.OrderID, *req.Fraud); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, accepted{"accepted"})
}

// review: POST /v1/risk/reviews {"order_id", "decision", "reviewer"} → 202
// once the verdict is stored; it is sent by the engine's review senders.
func (cfg Config) review(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OrderID  *string `json:"order_id"`
		Decision *string `json:"decision"`
		Reviewer *string `json:"reviewer"`
	}
	if err := readJSON(r, &req); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	switch {
	case req.OrderID == nil || !validID(*req.OrderID):
		httpapi.WriteError(w, orderflow.Invalid("order_id", "order_id must be 1-64 of [A-Za-z0-9_-]"))
		return
	case req.Decision == nil || (*req.Decision != "approve" && *req.Decision != "reject"):
		httpapi.WriteError(w, orderflow.Invalid("decision", "decision must be approve or reject"))
		return
	case req.Reviewer == nil || !validPrintable(*req.Reviewer, 64):
		httpapi.WriteError(w, orderflow.Invalid("reviewer", "reviewer must be 1-64 printable ASCII characters"))
		return
	}
	if err := cfg.Reviewer.Review(r.Context(), *req.OrderID, orderflow.Decision(*req.Decision), *req.Reviewer); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, accepted{"accepted"})
}

func (cfg Config) rolloutStatus(w http.ResponseWriter, r *http.Request) {
	st, err := cfg.Rollout.Status(r.Context())
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// rolloutAct: POST /v1/risk/rollout {"action", "challenger", "reason"?}.
func (cfg Config) rolloutAct(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Action     *string `json:"action"`
		Challenger *string `json:"challenger"`
		Reason     *string `json:"reason"`
	}
	if err := readJSON(r, &req); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	if req.Action == nil {
		httpapi.WriteError(w, orderflow.Invalid("action", "action must be start, advance, pause or rollback"))
		return
	}
	var challenger, reason string
	if req.Challenger != nil {
		challenger = *req.Challenger
	}
	if req.Reason != nil {
		if len(*req.Reason) > 200 {
			httpapi.WriteError(w, orderflow.Invalid("reason", "reason must be at most 200 characters"))
			return
		}
		reason = *req.Reason
	}
	st, err := cfg.Rollout.Act(r.Context(), *req.Action, challenger, reason)
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		httpapi.WriteError(w, orderflow.Wrap(orderflow.EInternal, err, "encode answer"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
