package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/store/sqlite"
	"github.com/orderflow/orderflow/store/storetest"
)

var _ order.InlineApplier = (*sqlite.Store)(nil)

// TestRecordAndApplyCallback: recording a callback and applying its order in
// one write ends where RecordCallback followed by ApplyCallbacks ends, and
// the record's answers (duplicate, conflict, not found) are RecordCallback's.
func TestRecordAndApplyCallback(t *testing.T) {
	const (
		decided  = orderflow.EventRiskDecided
		reviewed = orderflow.EventRiskReviewed
	)
	cb := func(et orderflow.EventType, d orderflow.Decision) *orderflow.Callback {
		return storetest.NewCallback("ord_1", et, d, 0.42, "v3")
	}
	type step struct {
		cb      *orderflow.Callback
		cancel  bool
		res     orderflow.RecordResult
		code    string // error code wanted instead of res
		applied bool
	}
	tests := []struct {
		name      string
		steps     []step
		status    orderflow.Status
		version   int64
		unapplied []string
		outcomes  string
	}{
		{"Approve", []step{{cb: cb(decided, orderflow.DecisionApprove), res: orderflow.Accepted, applied: true}},
			orderflow.StatusApproved, 2, nil, "map[risk.decided:applied]"},
		{"ReviewThenReviewed", []step{
			{cb: cb(decided, orderflow.DecisionReview), res: orderflow.Accepted, applied: true},
			{cb: cb(reviewed, orderflow.DecisionReject), res: orderflow.Accepted, applied: true}},
			orderflow.StatusRejected, 3, nil, "map[risk.decided:applied risk.reviewed:applied]"},
		{"ReviewedWaitsForDecided", []step{
			{cb: cb(reviewed, orderflow.DecisionApprove), res: orderflow.Accepted, applied: true}},
			orderflow.StatusPendingReview, 1, []string{"ord_1"}, "map[risk.reviewed:]"},
		{"DecidedSettlesTheWaitingReviewed", []step{
			{cb: cb(reviewed, orderflow.DecisionApprove), res: orderflow.Accepted, applied: true},
			{cb: cb(decided, orderflow.DecisionReview), res: orderflow.Accepted, applied: true}},
			orderflow.StatusApproved, 3, nil, "map[risk.decided:applied risk.reviewed:applied]"},
		{"Duplicate", []step{
			{cb: cb(decided, orderflow.DecisionApprove), res: orderflow.Accepted, applied: true},
			{cb: cb(decided, orderflow.DecisionApprove), res: orderflow.Duplicate}},
			orderflow.StatusApproved, 2, nil, "map[risk.decided:applied]"},
		{"Conflict", []step{
			{cb: cb(decided, orderflow.DecisionApprove), res: orderflow.Accepted, applied: true},
			{cb: cb(decided, orderflow.DecisionReject), code: orderflow.EConflict}},
			orderflow.StatusApproved, 2, nil, "map[risk.decided:applied]"},
		{"Cancelled", []step{
			{cancel: true},
			{cb: cb(decided, orderflow.DecisionApprove), res: orderflow.Accepted, applied: true}},
			orderflow.StatusCancelled, 2, nil, "map[risk.decided:ignored_cancelled]"},
		{"UnknownOrder", []step{
			{cb: storetest.NewCallback("ord_missing", decided, orderflow.DecisionApprove, 0.1, "v3"), code: orderflow.ENotFound}},
			orderflow.StatusPendingReview, 1, nil, "map[]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := MustOpen(t)
			storetestCreate(t, s, "ord_1")
			for i, st := range tc.steps {
				if st.cancel {
					if _, err := s.Transition(ctx, "ord_1", orderflow.ActionCancel); err != nil {
						t.Fatal(err)
					}
					continue
				}
				res, applied, err := s.RecordAndApplyCallback(ctx, st.cb)
				if st.code != "" {
					if orderflow.ErrorCode(err) != st.code || applied {
						t.Fatalf("step %d: = %v, %v, %v; want %s, not applied", i, res, applied, err, st.code)
					}
					continue
				}
				if err != nil || res != st.res || applied != st.applied {
					t.Fatalf("step %d: = %v, %v, %v; want %v, applied %v", i, res, applied, err, st.res, st.applied)
				}
			}
			o, err := s.Order(ctx, "ord_1")
			if err != nil || o.Status != tc.status || o.Version != tc.version {
				t.Fatalf("order = %+v, %v; want %s version %d", o, err, tc.status, tc.version)
			}
			ids, err := s.UnappliedOrders(ctx, 10)
			if err != nil || fmt.Sprint(ids) != fmt.Sprint(append([]string{}, tc.unapplied...)) {
				t.Fatalf("UnappliedOrders = %v, %v; want %v", ids, err, tc.unapplied)
			}
			if n, err := s.ApplyCallbacks(ctx, "ord_1"); err != nil || n != 0 {
				t.Fatalf("ApplyCallbacks after = %d, %v; want nothing left to settle", n, err)
			}
			hist, err := s.History(ctx, "ord_1")
			if err != nil {
				t.Fatal(err)
			}
			got := map[orderflow.EventType]orderflow.Outcome{}
			for _, h := range hist {
				if h.Kind == orderflow.HistoryCallback {
					got[h.Callback.EventType] = h.Outcome
				}
			}
			if fmt.Sprint(got) != tc.outcomes {
				t.Fatalf("outcomes %v, want %s", got, tc.outcomes)
			}
		})
	}
}

// TestSaveDecisionReturnsWhatIsStored: the decision SaveDecision returns
// without reading it back is the one a read returns, for a first save (the
// statements are prepared only once the tables exist) and the ones after.
func TestSaveDecisionReturnsWhatIsStored(t *testing.T) {
	ctx := context.Background()
	s := MustOpen(t)
	at := time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.FixedZone("X", 3600))
	for i := range 3 {
		d := &orderflow.RiskDecision{OrderID: fmt.Sprint("o", i), EventType: orderflow.EventRiskDecided,
			UserID: "u", EventID: fmt.Sprint("e", i), Decision: orderflow.DecisionReview, Score: 0.1 + float64(i)/3,
			ModelVersion: "v2.1", ShadowVersion: "v3", ShadowScore: 0.7, DecidedAt: at}
		got, err := s.SaveDecision(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		again := *d
		again.EventID, again.Score = "other", 0.9
		stored, err := s.SaveDecision(ctx, &again) // answered from the stored row
		if err != nil {
			t.Fatal(err)
		}
		if *got != *stored || !got.DecidedAt.Equal(at) || got.DecidedAt.Location() != time.UTC {
			t.Fatalf("save %d returned %+v, stored is %+v", i, got, stored)
		}
	}
}
