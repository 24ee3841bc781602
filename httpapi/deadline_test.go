package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/orderflow/orderflow/deadline"
	"github.com/orderflow/orderflow/store/sqlite"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDeadline(t *testing.T) {
	gate := make(chan struct{})
	// Every commit waits for the gate (or 5 s): a store stuck on fsync.
	s := newServer(t, serverOpts{
		budgets: deadline.Budgets{Edge: 300 * time.Millisecond},
		store: []sqlite.Option{sqlite.WithBeforeCommit(func() {
			select {
			case <-gate:
			case <-time.After(5 * time.Second):
			}
		})},
	})
	defer close(gate)
	tests := []struct {
		name   string
		header []string
	}{
		{"OwnBudget", nil},
		{"CallerBudgetShorter", []string{"X-Request-Timeout-Ms", "150"}},
		{"CallerBudgetGoneOnArrival", []string{"X-Request-Timeout-Ms", "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			r := s.createOrder(t, orderBody("u_1"), tt.header...)
			took := time.Since(start)
			if code, _ := r.errorOf(t); r.status != http.StatusGatewayTimeout || code != "deadline_exceeded" {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if took > 3*time.Second {
				t.Errorf("504 after %v: it should come at the budget, not when the store answers", took)
			}
			if r.header.Get("X-Orderflow-Internal-Error-Code") != "" {
				t.Error("internal header leaked to the client")
			}
		})
	}
	if got := testutil.ToFloat64(s.metrics.Errors.WithLabelValues("deadline_exceeded")); got != 3 {
		t.Errorf("deadline_exceeded counted %v times, want 3", got)
	}
	if r := s.do(t, http.MethodGet, "/healthz", nil); r.status != 200 {
		t.Errorf("healthz under the budget: %d", r.status)
	}
}
