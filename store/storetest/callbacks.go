package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

const (
	decidedEv  = orderflow.EventRiskDecided
	reviewedEv = orderflow.EventRiskReviewed
	approve    = orderflow.DecisionApprove
	reject     = orderflow.DecisionReject
	review     = orderflow.DecisionReview
)

func testRecordCallback(t *testing.T, open func(t *testing.T) orderflow.OrderStore) {
	first := NewCallback("ord_1", decidedEv, approve, 0.031, "v3")
	with := func(f func(c *orderflow.Callback)) *orderflow.Callback {
		c := *first
		f(&c)
		return &c
	}
	tests := []struct {
		name   string
		second *orderflow.Callback
		want   orderflow.RecordResult // 0: an error with code
		code   string
	}{
		{"DuplicateSameVerdict", with(func(c *orderflow.Callback) {}), orderflow.Duplicate, ""},
		{"DuplicateNewEventIDAndTime", with(func(c *orderflow.Callback) {
			c.EventID, c.DecidedAt = "evt_retry", c.DecidedAt.Add(time.Hour)
		}), orderflow.Duplicate, ""},
		{"ErrConflictDecision", with(func(c *orderflow.Callback) { c.Decision = reject }), 0, orderflow.EConflict},
		{"ErrConflictScore", with(func(c *orderflow.Callback) { c.Score = 0.032 }), 0, orderflow.EConflict},
		{"ErrConflictModel", with(func(c *orderflow.Callback) { c.ModelVersion = "v2.1" }), 0, orderflow.EConflict},
		{"AcceptedOtherEventType", with(func(c *orderflow.Callback) { c.EventType = reviewedEv }), orderflow.Accepted, ""},
		{"ErrNotFound", with(func(c *orderflow.Callback) { c.OrderID = "ord_missing" }), 0, orderflow.ENotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			mustCreate(t, s, "ord_1", "u_1", base)
			mustRecord(t, s, first, orderflow.Accepted)
			got, err := s.RecordCallback(ctx(t), tc.second)
			if tc.code != "" {
				wantCode(t, "second callback", err, tc.code)
			} else if err != nil || got != tc.want {
				t.Fatalf("second callback = %v, %v; want %v", got, err, tc.want)
			}
			// The first verdict is what stays recorded.
			hist, err := s.History(ctx(t), "ord_1")
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hist {
				if h.Kind == orderflow.HistoryCallback && h.Callback.EventType == decidedEv && !h.Callback.SameVerdict(first) {
					t.Fatalf("recorded verdict became %+v", h.Callback)
				}
			}
		})
	}
	t.Run("RecordedNotApplied", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, "ord_1", "u_1", base)
		mustRecord(t, s, first, orderflow.Accepted)
		wantStatus(t, s, "ord_1", orderflow.StatusPendingReview, 1)
	})
	t.Run("Concurrent32SameKeyOneAccepted", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, "ord_1", "u_1", base)
		const n = 32
		var wg sync.WaitGroup
		results := make([]orderflow.RecordResult, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				c := *first
				c.EventID = fmt.Sprintf("evt_%d", i) // a sender's retries may carry fresh ids
				results[i], errs[i] = s.RecordCallback(ctx(t), &c)
			})
		}
		wg.Wait()
		accepted := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("goroutine %d: %v", i, errs[i])
			}
			if results[i] == orderflow.Accepted {
				accepted++
			} else if results[i] != orderflow.Duplicate {
				t.Fatalf("goroutine %d: result %v", i, results[i])
			}
		}
		if accepted != 1 {
			t.Fatalf("%d of %d Accepted, want exactly 1", accepted, n)
		}
	})
}

func testApplyCallbacks(t *testing.T, open func(t *testing.T) orderflow.OrderStore) {
	type step struct {
		cb     *orderflow.Callback // record this (Accepted) …
		cancel bool                // … or cancel the order
		apply  int                 // then, if >= 0, apply and expect this many settled
	}
	cb := func(et orderflow.EventType, d orderflow.Decision) *orderflow.Callback {
		return NewCallback("ord_1", et, d, 0.42, "v3")
	}
	const skip = -1
	tests := []struct {
		name     string
		steps    []step
		status   orderflow.Status
		version  int64
		risk     orderflow.Decision // "" when no verdict was applied
		outcomes map[orderflow.EventType]orderflow.Outcome
	}{
		{"Approve", []step{{cb: cb(decidedEv, approve), apply: 1}},
			orderflow.StatusApproved, 2, approve, map[orderflow.EventType]orderflow.Outcome{decidedEv: orderflow.OutcomeApplied}},
		{"Reject", []step{{cb: cb(decidedEv, reject), apply: 1}},
			orderflow.StatusRejected, 2, reject, map[orderflow.EventType]orderflow.Outcome{decidedEv: orderflow.OutcomeApplied}},
		{"ReviewThenReviewed", []step{{cb: cb(decidedEv, review), apply: 1}, {cb: cb(reviewedEv, approve), apply: 1}},
			orderflow.StatusApproved, 3, approve, map[orderflow.EventType]orderflow.Outcome{decidedEv: orderflow.OutcomeApplied, reviewedEv: orderflow.OutcomeApplied}},
		{"BothInOneApply", []step{{cb: cb(decidedEv, review), apply: skip}, {cb: cb(reviewedEv, reject), apply: 2}},
			orderflow.StatusRejected, 3, reject, map[orderflow.EventType]orderflow.Outcome{decidedEv: orderflow.OutcomeApplied, reviewedEv: orderflow.OutcomeApplied}},
		{"ReviewedWaitsForDecided", []step{{cb: cb(reviewedEv, approve), apply: 0}, {cb: cb(decidedEv, review), apply: 2}},
			orderflow.StatusApproved, 3, approve, map[orderflow.EventType]orderflow.Outcome{decidedEv: orderflow.OutcomeApplied, reviewedEv: orderflow.OutcomeApplied}},
		{"ReviewedIgnoredNotInReview", []step{{cb: cb(reviewedEv, reject), apply: 0}, {cb: cb(decidedEv, approve), apply: 2}},
			orderflow.StatusApproved, 2, approve, map[orderflow.EventType]orderflow.Outcome{decidedEv: orderflow.OutcomeApplied, reviewedEv: orderflow.OutcomeIgnoredNotInReview}},
		{"ReviewedAfterApproval", []step{{cb: cb(decidedEv, approve), apply: 1}, {cb: cb(reviewedEv, reject), apply: 1}},
			orderflow.StatusApproved, 2, approve, map[orderflow.EventType]orderflow.Outcome{decidedEv: orderflow.OutcomeApplied, reviewedEv: orderflow.OutcomeIgnoredNotInReview}},
		{"DecidedIgnoredCancelled", []step{{cancel: true, apply: skip}, {cb: cb(decidedEv, approve), apply: 1}},
			orderflow.StatusCancelled, 2, "", map[orderflow.EventType]orderflow.Outcome{decidedEv: orderflow.OutcomeIgnoredCancelled}},
		{"ReviewedIgnoredCancelled", []step{{cb: cb(decidedEv, review), apply: 1}, {cancel: true, apply: skip}, {cb: cb(reviewedEv, approve), apply: 1}},
			orderflow.StatusCancelled, 3, review, map[orderflow.EventType]orderflow.Outcome{decidedEv: orderflow.OutcomeApplied, reviewedEv: orderflow.OutcomeIgnoredCancelled}},
		{"NothingToApply", []step{{apply: 0}},
			orderflow.StatusPendingReview, 1, "", map[orderflow.EventType]orderflow.Outcome{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			mustCreate(t, s, "ord_1", "u_1", base)
			for _, st := range tc.steps {
				switch {
				case st.cb != nil:
					mustRecord(t, s, st.cb, orderflow.Accepted)
				case st.cancel:
					if _, err := s.Transition(ctx(t), "ord_1", orderflow.ActionCancel); err != nil {
						t.Fatal(err)
					}
				}
				if st.apply >= 0 {
					mustApply(t, s, "ord_1", st.apply)
				}
			}
			o := wantStatus(t, s, "ord_1", tc.status, tc.version)
			switch {
			case tc.risk == "" && o.Risk != nil:
				t.Fatalf("risk %+v, want none", o.Risk)
			case tc.risk != "" && (o.Risk == nil || o.Risk.Decision != tc.risk || o.Risk.Score != 0.42 ||
				o.Risk.ModelVersion != "v3" || !o.Risk.DecidedAt.Equal(base.Add(time.Minute))):
				t.Fatalf("risk %+v, want %s 0.42 v3 decided %v", o.Risk, tc.risk, base.Add(time.Minute))
			}
			mustApply(t, s, "ord_1", 0) // applying again settles nothing
			hist, err := s.History(ctx(t), "ord_1")
			if err != nil {
				t.Fatal(err)
			}
			got := map[orderflow.EventType]orderflow.Outcome{}
			for _, h := range hist {
				if h.Kind == orderflow.HistoryCallback {
					got[h.Callback.EventType] = h.Outcome
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.outcomes) {
				t.Fatalf("outcomes %v, want %v", got, tc.outcomes)
			}
			wantStatus(t, s, "ord_1", tc.status, tc.version)
		})
	}
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := open(t).ApplyCallbacks(ctx(t), "ord_missing")
		wantCode(t, "ApplyCallbacks of a missing order", err, orderflow.ENotFound)
	})
	t.Run("ConcurrentAppliesSettleOnce", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, "ord_1", "u_1", base)
		mustRecord(t, s, cb(decidedEv, review), orderflow.Accepted)
		mustRecord(t, s, cb(reviewedEv, approve), orderflow.Accepted)
		const n = 16
		var wg sync.WaitGroup
		settled := make([]int, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				// A version conflict is the store's way to say "retry".
				for try := 0; try < 20; try++ {
					settled[i], errs[i] = s.ApplyCallbacks(ctx(t), "ord_1")
					if orderflow.ErrorCode(errs[i]) != orderflow.EConflict {
						return
					}
				}
			})
		}
		wg.Wait()
		total := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("goroutine %d: %v", i, errs[i])
			}
			total += settled[i]
		}
		if total != 2 {
			t.Fatalf("%d entries settled in all, want 2", total)
		}
		wantStatus(t, s, "ord_1", orderflow.StatusApproved, 3)
	})
}

func testUnappliedOrders(t *testing.T, open func(t *testing.T) orderflow.OrderStore) {
	s := open(t)
	for _, id := range []string{"ord_a", "ord_b", "ord_c", "ord_d"} {
		mustCreate(t, s, id, "u_1", base)
	}
	want := func(limit int, ids ...string) {
		t.Helper()
		got, err := s.UnappliedOrders(ctx(t), limit)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(ids) {
			t.Fatalf("UnappliedOrders(%d) = %v, %v; want %v", limit, got, err, ids)
		}
	}
	want(10)
	// Arrival order b, a, c; b twice; d none.
	mustRecord(t, s, NewCallback("ord_b", decidedEv, review, 0.5, "v3"), orderflow.Accepted)
	mustRecord(t, s, NewCallback("ord_a", decidedEv, approve, 0.1, "v3"), orderflow.Accepted)
	mustRecord(t, s, NewCallback("ord_b", reviewedEv, approve, 0.5, "v3"), orderflow.Accepted)
	mustRecord(t, s, NewCallback("ord_c", reviewedEv, approve, 0.5, "v3"), orderflow.Accepted)
	want(10, "ord_b", "ord_a", "ord_c")
	want(2, "ord_b", "ord_a")
	mustApply(t, s, "ord_b", 2)
	want(10, "ord_a", "ord_c")
	mustApply(t, s, "ord_c", 0) // a risk.reviewed waiting for its risk.decided stays listed
	want(10, "ord_a", "ord_c")
	mustApply(t, s, "ord_a", 1)
	want(10, "ord_c")
}

func testHistory(t *testing.T, open func(t *testing.T) orderflow.OrderStore) {
	s := open(t)
	created := time.Now().Add(-time.Hour)
	mustCreate(t, s, "ord_1", "u_1", created)
	decidedCb := NewCallback("ord_1", decidedEv, review, 0.7, "v3")
	reviewedCb := NewCallback("ord_1", reviewedEv, approve, 0.7, "v3")
	mustRecord(t, s, decidedCb, orderflow.Accepted)
	mustApply(t, s, "ord_1", 1)
	mustRecord(t, s, reviewedCb, orderflow.Accepted)
	// Read before the second apply: a recorded callback has no outcome yet.
	hist, err := s.History(ctx(t), "ord_1")
	if err != nil {
		t.Fatal(err)
	}
	if last := hist[len(hist)-1]; last.Kind != orderflow.HistoryCallback || last.Outcome != "" {
		t.Fatalf("unapplied callback entry %+v, want no outcome", last)
	}
	mustApply(t, s, "ord_1", 1)
	if _, err := s.Transition(ctx(t), "ord_1", orderflow.ActionFulfill); err != nil {
		t.Fatal(err)
	}
	hist, err = s.History(ctx(t), "ord_1")
	if err != nil {
		t.Fatal(err)
	}
	type line struct {
		kind     orderflow.HistoryKind
		event    orderflow.EventType
		outcome  orderflow.Outcome
		from, to orderflow.Status
		cause    string
		version  int64
	}
	want := []line{
		{kind: orderflow.HistoryCreated},
		{kind: orderflow.HistoryCallback, event: decidedEv, outcome: orderflow.OutcomeApplied},
		{kind: orderflow.HistoryTransition, from: orderflow.StatusPendingReview, to: orderflow.StatusInReview, cause: string(decidedEv), version: 2},
		{kind: orderflow.HistoryCallback, event: reviewedEv, outcome: orderflow.OutcomeApplied},
		{kind: orderflow.HistoryTransition, from: orderflow.StatusInReview, to: orderflow.StatusApproved, cause: string(reviewedEv), version: 3},
		{kind: orderflow.HistoryTransition, from: orderflow.StatusApproved, to: orderflow.StatusFulfilled, cause: string(orderflow.ActionFulfill), version: 4},
	}
	var got []line
	for i, h := range hist {
		l := line{kind: h.Kind, outcome: h.Outcome, from: h.From, to: h.To, cause: h.Cause, version: h.Version}
		if h.Kind == orderflow.HistoryCallback {
			if h.Callback == nil || h.ReceivedAt.IsZero() || !h.At.Equal(h.ReceivedAt) {
				t.Fatalf("callback entry %d: %+v, want the callback and its received time", i, h)
			}
			l.event = h.Callback.EventType
			wantCb := map[orderflow.EventType]*orderflow.Callback{decidedEv: decidedCb, reviewedEv: reviewedCb}[l.event]
			if h.Callback.EventID != wantCb.EventID || !h.Callback.SameVerdict(wantCb) || !h.Callback.DecidedAt.Equal(wantCb.DecidedAt) {
				t.Fatalf("callback entry %d: %+v, want %+v", i, h.Callback, wantCb)
			}
		}
		if i > 0 && h.At.Before(hist[i-1].At) {
			t.Fatalf("entry %d at %v is before entry %d at %v: want oldest first", i, h.At, i-1, hist[i-1].At)
		}
		got = append(got, l)
	}
	if !hist[0].At.Equal(created) {
		t.Fatalf("created entry at %v, want %v", hist[0].At, created)
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("history\n got %+v\nwant %+v", got, want)
	}
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := s.History(ctx(t), "ord_missing")
		wantCode(t, "History of a missing order", err, orderflow.ENotFound)
	})
}
