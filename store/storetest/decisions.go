package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// RunDecisions runs the orderflow.DecisionStore contract against stores made
// by open, which is called once per subtest and must return an empty store
// (no decisions, no labels) closed by t.Cleanup. The first verdict for an
// (order, event type) wins and is what every later save returns, also under
// concurrent saves; labels upsert; LabelledDecisions joins the two for
// risk.decided only. Times are checked to the nanosecond, in UTC.
func RunDecisions(t *testing.T, open func(t *testing.T) orderflow.DecisionStore) {
	t.Helper()
	for _, c := range []struct {
		name string
		run  func(t *testing.T, open func(t *testing.T) orderflow.DecisionStore)
	}{
		{"SaveDecisionFirstWins", testSaveDecisionFirstWins},
		{"SaveDecisionConcurrentSameKey", testSaveDecisionConcurrent},
		{"SaveDecisionInvalid", testSaveDecisionInvalid},
		{"LabelledDecisions", testLabelledDecisions},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open) })
	}
}

// decisionAt has nanoseconds and a zone other than UTC, so truncation and
// conversion show.
var decisionAt = time.Date(2026, 3, 1, 12, 0, 1, 987654321, time.FixedZone("CST", 8*3600))

func newDecision(orderID string, d orderflow.Decision, score float64) *orderflow.RiskDecision {
	return &orderflow.RiskDecision{
		OrderID: orderID, UserID: "u-" + orderID, EventType: orderflow.EventRiskDecided,
		EventID: "evt_" + orderID + "_" + string(d), Decision: d, Score: score, ModelVersion: "v2.1",
		ShadowVersion: "v3", ShadowScore: score / 2, DecidedAt: decisionAt,
	}
}

// storedDecision is d as the store hands it back: the time in UTC.
func storedDecision(d *orderflow.RiskDecision) orderflow.RiskDecision {
	c := *d
	c.DecidedAt = c.DecidedAt.UTC()
	return c
}

func testSaveDecisionFirstWins(t *testing.T, open func(t *testing.T) orderflow.DecisionStore) {
	ctx := context.Background()
	s := open(t)
	first := newDecision("o1", orderflow.DecisionReject, 0.91)
	got, err := s.SaveDecision(ctx, first)
	if err != nil {
		t.Fatalf("SaveDecision: %v", err)
	}
	if want := storedDecision(first); !reflect.DeepEqual(*got, want) {
		t.Fatalf("SaveDecision = %+v, want %+v", *got, want)
	}
	for _, tc := range []struct {
		name string
		d    *orderflow.RiskDecision
	}{
		{"SameVerdictAgain", newDecision("o1", orderflow.DecisionReject, 0.91)},
		{"DifferentVerdict", newDecision("o1", orderflow.DecisionApprove, 0.02)},
		{"DifferentModel", func() *orderflow.RiskDecision {
			d := newDecision("o1", orderflow.DecisionReject, 0.5)
			d.ModelVersion, d.ShadowVersion = "v3", "v2.1"
			return d
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			again, err := s.SaveDecision(ctx, tc.d)
			if err != nil {
				t.Fatalf("SaveDecision: %v", err)
			}
			if want := storedDecision(first); !reflect.DeepEqual(*again, want) {
				t.Errorf("SaveDecision = %+v, want the first verdict %+v", *again, want)
			}
		})
	}
	t.Run("OtherEventTypeIsAnotherKey", func(t *testing.T) {
		rev := newDecision("o1", orderflow.DecisionApprove, 0.1)
		rev.EventType = orderflow.EventRiskReviewed
		got, err := s.SaveDecision(ctx, rev)
		if err != nil || !reflect.DeepEqual(*got, storedDecision(rev)) {
			t.Errorf("SaveDecision(risk.reviewed) = %+v, %v; want %+v", got, err, storedDecision(rev))
		}
	})
}

// Concurrent saves of one key, with different verdicts, all return the one
// that was stored.
func testSaveDecisionConcurrent(t *testing.T, open func(t *testing.T) orderflow.DecisionStore) {
	ctx := context.Background()
	s := open(t)
	const n = 32
	results := make([]*orderflow.RiskDecision, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := newDecision("o1", orderflow.DecisionApprove, float64(i)/n)
			results[i], errs[i] = s.SaveDecision(ctx, d)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("save %d: %v", i, errs[i])
		}
		if !reflect.DeepEqual(results[i], results[0]) {
			t.Fatalf("save %d returned %+v, save 0 %+v: two verdicts for one key", i, results[i], results[0])
		}
	}
}

func testSaveDecisionInvalid(t *testing.T, open func(t *testing.T) orderflow.DecisionStore) {
	s := open(t)
	for _, tc := range []struct {
		name  string
		d     *orderflow.RiskDecision
		field string
	}{
		{"ErrNil", nil, "order_id"},
		{"ErrOrderIDRequired", &orderflow.RiskDecision{EventType: orderflow.EventRiskDecided, Decision: "approve"}, "order_id"},
		{"ErrEventTypeRequired", &orderflow.RiskDecision{OrderID: "o1", Decision: "approve"}, "event_type"},
		{"ErrDecisionRequired", &orderflow.RiskDecision{OrderID: "o1", EventType: orderflow.EventRiskDecided}, "decision"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.SaveDecision(context.Background(), tc.d)
			var e *orderflow.Error
			if orderflow.ErrorCode(err) != orderflow.EInvalid || !errors.As(err, &e) || e.Field != tc.field {
				t.Errorf("SaveDecision = %v, want invalid_argument on %s", err, tc.field)
			}
		})
	}
	if err := s.SetLabel(context.Background(), "", true); orderflow.ErrorCode(err) != orderflow.EInvalid {
		t.Errorf("SetLabel(\"\") = %v, want invalid_argument", err)
	}
}

func testLabelledDecisions(t *testing.T, open func(t *testing.T) orderflow.DecisionStore) {
	ctx := context.Background()
	s := open(t)
	// A new store has no decisions: reads answer empty, not an error.
	if got, err := s.LabelledDecisions(ctx, 0); err != nil || len(got) != 0 {
		t.Fatalf("LabelledDecisions on a new store = %v, %v; want empty", got, err)
	}
	// A label may come before its decision; it joins once the decision does.
	if err := s.SetLabel(ctx, "o3", true); err != nil {
		t.Fatalf("SetLabel before any decision: %v", err)
	}
	var want []orderflow.LabelledDecision
	for i := range 5 {
		d := newDecision(fmt.Sprintf("o%d", i), orderflow.DecisionApprove, float64(i)/10)
		d.DecidedAt = decisionAt.Add(time.Duration(i) * time.Second)
		if _, err := s.SaveDecision(ctx, d); err != nil {
			t.Fatal(err)
		}
		if i == 0 || i == 2 || i == 3 {
			want = append(want, orderflow.LabelledDecision{RiskDecision: storedDecision(d), Fraud: i != 2})
		}
	}
	rev := newDecision("o0", orderflow.DecisionReject, 0.9)
	rev.EventType = orderflow.EventRiskReviewed // not a model's verdict: never in the set
	if _, err := s.SaveDecision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct {
		order string
		fraud bool
	}{{"o0", false}, {"o2", true}, {"o2", false}, {"o0", true}, {"o-unknown", true}} {
		if err := s.SetLabel(ctx, l.order, l.fraud); err != nil {
			t.Fatalf("SetLabel(%s): %v", l.order, err)
		}
	}
	for _, tc := range []struct {
		name  string
		limit int
		want  []orderflow.LabelledDecision
	}{
		{"All", 0, want},
		{"Limit", 2, want[:2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.LabelledDecisions(ctx, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("LabelledDecisions(%d) =\n%+v\nwant\n%+v", tc.limit, got, tc.want)
			}
		})
	}
}
