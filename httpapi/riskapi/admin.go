package riskapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi"
)

// StuckLister finds orders waiting too long for a verdict; *sqlite.Store
// implements it.
type StuckLister interface {
	StuckOrders(ctx context.Context, cutoff time.Time, limit int) ([]*orderflow.Order, error)
	CountStuck(ctx context.Context, cutoff time.Time) (int, error)
}

// AdminConfig wires the admin routes. A nil DeadLetters or Stuck leaves its
// routes out.
type AdminConfig struct {
	DeadLetters orderflow.DeadLetters
	Stuck       StuckLister
	// StuckAfter is how long an order may wait in pending_review or
	// in_review before it counts as stuck.
	StuckAfter time.Duration
	Now        func() time.Time // time.Now
}

// Limits of the admin listings.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// AdminRoutes returns the admin listener's risk routes by ServeMux pattern:
// GET /admin/deadletters, POST /admin/deadletters/{id}/redrive and GET
// /admin/stuck.
func AdminRoutes(cfg AdminConfig) map[string]http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	routes := map[string]http.Handler{}
	if cfg.DeadLetters != nil {
		routes["GET /admin/deadletters"] = http.HandlerFunc(cfg.listDeadLetters)
		routes["POST /admin/deadletters/{id}/redrive"] = http.HandlerFunc(cfg.redrive)
	}
	if cfg.Stuck != nil {
		routes["GET /admin/stuck"] = http.HandlerFunc(cfg.stuck)
	}
	return routes
}

// DeadLetterJSON is one dead letter on the wire; the payload is left out
// (logs and admin answers carry no full payloads).
type DeadLetterJSON struct {
	ID        string    `json:"id"`
	Group     string    `json:"group"`
	EventID   string    `json:"event_id"`
	EventType string    `json:"event_type"`
	OrderID   string    `json:"order_id"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error"`
	At        time.Time `json:"at"`
}

// DeadLettersJSON is the answer of GET /admin/deadletters.
type DeadLettersJSON struct {
	DeadLetters []DeadLetterJSON `json:"dead_letters"`
}

func limitParam(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return DefaultListLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxListLimit {
		return 0, orderflow.Invalid("limit", "limit must be 1-%d", MaxListLimit)
	}
	return n, nil
}

func (cfg AdminConfig) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r)
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	dls, err := cfg.DeadLetters.DeadLetters(r.Context(), limit)
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	out := DeadLettersJSON{DeadLetters: make([]DeadLetterJSON, 0, len(dls))}
	for _, d := range dls {
		out.DeadLetters = append(out.DeadLetters, DeadLetterJSON{
			ID: d.ID, Group: d.Group, EventID: d.Event.ID, EventType: d.Event.Type, OrderID: d.Event.OrderID,
			Attempts: d.Attempts, LastError: d.LastError, At: d.At.UTC(),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (cfg AdminConfig) redrive(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := cfg.DeadLetters.Redrive(r.Context(), id); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, struct {
		Status string `json:"status"`
		ID     string `json:"id"`
	}{"redriven", id})
}

// StuckJSON is the answer of GET /admin/stuck.
type StuckJSON struct {
	StuckAfter string           `json:"stuck_after"`
	Count      int              `json:"count"`
	Orders     []StuckOrderJSON `json:"orders"`
}

// StuckOrderJSON is one order waiting too long.
type StuckOrderJSON struct {
	ID             string    `json:"id"`
	UserID         string    `json:"user_id"`
	Status         string    `json:"status"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	WaitingSeconds float64   `json:"waiting_seconds"`
}

func (cfg AdminConfig) stuck(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r)
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	now := cfg.Now()
	cutoff := now.Add(-cfg.StuckAfter)
	n, err := cfg.Stuck.CountStuck(r.Context(), cutoff)
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	os, err := cfg.Stuck.StuckOrders(r.Context(), cutoff, limit)
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	out := StuckJSON{StuckAfter: cfg.StuckAfter.String(), Count: n, Orders: make([]StuckOrderJSON, 0, len(os))}
	for _, o := range os {
		out.Orders = append(out.Orders, StuckOrderJSON{
			ID: o.ID, UserID: o.UserID, Status: string(o.Status), CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
			WaitingSeconds: now.Sub(o.UpdatedAt).Seconds(),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// StuckGauge returns orderflow_orders_stuck: the orders waiting longer than
// after for a verdict, counted on each scrape (one indexed COUNT, bounded by
// a 2 s timeout; -1 when the count fails, so an alert on "> 0" still fires
// on a broken store and the failure shows in the graph).
func StuckGauge(l StuckLister, after time.Duration, now func() time.Time) prometheus.Collector {
	if now == nil {
		now = time.Now
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "orderflow", Name: "orders_stuck",
		Help: "Orders in pending_review or in_review for longer than --stuck-after (-1: the count failed).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := l.CountStuck(ctx, now().Add(-after))
		if err != nil {
			return -1
		}
		return float64(n)
	})
}
