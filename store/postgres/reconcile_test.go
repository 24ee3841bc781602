package postgres_test

import (
	"slices"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/store/storetest"
)

// TestRepublishUndecided: only published order.created events of orders
// still pending_review without a risk.decided callback, published long
// enough ago, go back on the relay's work list.
func TestRepublishUndecided(t *testing.T) {
	s := MustOpen(t)
	now := time.Now()
	s.Now = func() time.Time { return now }
	seqs := createOrders(t, s, "ord", 4) // ord_0 … ord_3
	// ord_3 stays unpublished: it is on the work list already.
	if err := s.MarkPublished(ctx(t), seqs[:3], 1); err != nil {
		t.Fatal(err)
	}
	// ord_1 has a verdict recorded (not yet applied): not undecided.
	c := storetest.NewCallback("ord_1", orderflow.EventRiskDecided, orderflow.DecisionApprove, 0.1, "v2.1")
	if _, err := s.RecordCallback(ctx(t), c); err != nil {
		t.Fatal(err)
	}
	// ord_2 was cancelled by its client: no verdict needed any more.
	if _, err := s.Transition(ctx(t), "ord_2", orderflow.ActionCancel); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name   string
		before time.Time
		want   int64
		list   []int64
	}{
		{"TooRecent", now, 0, seqs[3:]},
		{"OnlyUndecided", now.Add(time.Nanosecond), 1, []int64{seqs[0], seqs[3]}},
		{"AlreadyOnList", now.Add(time.Hour), 0, []int64{seqs[0], seqs[3]}},
	} {
		t.Run(step.name, func(t *testing.T) {
			n, err := s.RepublishUndecided(ctx(t), step.before, 10)
			if err != nil || n != step.want {
				t.Fatalf("RepublishUndecided = %d, %v; want %d", n, err, step.want)
			}
			if got := unpublished(t, s); !slices.Equal(got, step.list) {
				t.Fatalf("unpublished = %v, want %v", got, step.list)
			}
		})
	}
}
