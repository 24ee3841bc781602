package sqlite_test

import (
	"context"
	"testing"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/store/storetest"
)

func TestDecisionContract(t *testing.T) {
	storetest.RunDecisions(t, func(t *testing.T) orderflow.DecisionStore { return MustOpen(t) })
}

// The decision tables are the risk engine's: a file gets them with its first
// decision write, and reads before that answer empty instead of failing.
func TestDecisionTablesCreatedOnFirstWrite(t *testing.T) {
	ctx := context.Background()
	s := MustOpen(t)
	tables := func() (n int) {
		err := s.ReadDB().QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema
			WHERE type = 'table' AND name IN ('risk_decisions', 'risk_labels')`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := tables(); n != 0 {
		t.Fatalf("a new file has %d decision tables, want 0", n)
	}
	if got, err := s.LabelledDecisions(ctx, 10); err != nil || len(got) != 0 {
		t.Fatalf("LabelledDecisions before any write = %v, %v; want empty", got, err)
	}
	d := &orderflow.RiskDecision{OrderID: "o1", EventType: orderflow.EventRiskDecided, Decision: orderflow.DecisionApprove}
	if _, err := s.SaveDecision(ctx, d); err != nil {
		t.Fatalf("first SaveDecision: %v", err)
	}
	if n := tables(); n != 2 {
		t.Fatalf("after the first decision the file has %d decision tables, want 2", n)
	}
}
