package storetest

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

func testCreateOrder(t *testing.T, open func(t *testing.T) orderflow.OrderStore) {
	key := func(k, hash string, expires time.Time) *orderflow.IdempotencyKey {
		return &orderflow.IdempotencyKey{Key: k, RequestHash: hash, ExpiresAt: expires}
	}
	later := time.Now().Add(time.Hour)
	tests := []struct {
		name string
		run  func(t *testing.T, s orderflow.OrderStore)
	}{
		{"Created", func(t *testing.T, s orderflow.OrderStore) {
			want := NewOrder("ord_1", "u_1", base)
			want.Internal = true
			ev := NewEvent("ord_1")
			got, replay, err := s.CreateOrder(ctx(t), want, ev, nil)
			if err != nil || replay {
				t.Fatalf("CreateOrder = replay %v, err %v", replay, err)
			}
			equalOrder(t, "returned", got, want)
			equalOrder(t, "read back", mustOrder(t, s, "ord_1"), want)
			if ev.Seq <= 0 {
				t.Fatalf("event seq %d, want > 0 once stored", ev.Seq)
			}
		}},
		{"TimesInUTCWithNanoseconds", func(t *testing.T, s orderflow.OrderStore) {
			mustCreate(t, s, "ord_1", "u_1", base)
			got := mustOrder(t, s, "ord_1")
			if !got.CreatedAt.Equal(base) || got.CreatedAt.Nanosecond() != base.Nanosecond() {
				t.Fatalf("created_at %v, want %v", got.CreatedAt, base)
			}
			if got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC {
				t.Fatalf("times in %v, want UTC", got.CreatedAt.Location())
			}
		}},
		{"EventSeqGrows", func(t *testing.T, s orderflow.OrderStore) {
			var last int64
			for i := range 3 {
				id := fmt.Sprintf("ord_%d", i)
				ev := NewEvent(id)
				if _, _, err := s.CreateOrder(ctx(t), NewOrder(id, "u_1", base), ev, nil); err != nil {
					t.Fatal(err)
				}
				if ev.Seq <= last {
					t.Fatalf("event %d seq %d after %d, want increasing", i, ev.Seq, last)
				}
				last = ev.Seq
			}
		}},
		{"ErrDuplicateID", func(t *testing.T, s orderflow.OrderStore) {
			mustCreate(t, s, "ord_1", "u_1", base)
			o := NewOrder("ord_1", "u_2", base)
			ev := NewEvent("ord_1")
			ev.ID = "evt_other"
			_, _, err := s.CreateOrder(ctx(t), o, ev, nil)
			wantCode(t, "second CreateOrder with the same id", err, orderflow.EConflict)
			if got := mustOrder(t, s, "ord_1"); got.UserID != "u_1" {
				t.Fatalf("first order overwritten: user %s", got.UserID)
			}
		}},
		{"ReplaySameKey", func(t *testing.T, s orderflow.OrderStore) {
			first := NewOrder("ord_1", "u_1", base)
			if _, replay, err := s.CreateOrder(ctx(t), first, NewEvent("ord_1"), key("k1", "h1", later)); err != nil || replay {
				t.Fatalf("first CreateOrder = replay %v, err %v", replay, err)
			}
			// A retry builds a new order (new id, new time) for the same request.
			retry := NewOrder("ord_2", "u_1", base.Add(time.Second))
			got, replay, err := s.CreateOrder(ctx(t), retry, NewEvent("ord_2"), key("k1", "h1", later))
			if err != nil || !replay {
				t.Fatalf("retry = replay %v, err %v; want replay", replay, err)
			}
			equalOrder(t, "replayed", got, first)
			_, err = s.Order(ctx(t), "ord_2")
			wantCode(t, "the retry's order", err, orderflow.ENotFound)
		}},
		{"ReplayReturnsFirstAnswer", func(t *testing.T, s orderflow.OrderStore) {
			first := NewOrder("ord_1", "u_1", base)
			if _, _, err := s.CreateOrder(ctx(t), first, NewEvent("ord_1"), key("k1", "h1", later)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Transition(ctx(t), "ord_1", orderflow.ActionCancel); err != nil {
				t.Fatal(err)
			}
			got, replay, err := s.CreateOrder(ctx(t), NewOrder("ord_2", "u_1", base), NewEvent("ord_2"), key("k1", "h1", later))
			if err != nil || !replay {
				t.Fatalf("retry = replay %v, err %v; want replay", replay, err)
			}
			equalOrder(t, "replay after cancel", got, first) // as it was then: pending_review, v1
		}},
		{"ErrKeyReusedForOtherRequest", func(t *testing.T, s orderflow.OrderStore) {
			if _, _, err := s.CreateOrder(ctx(t), NewOrder("ord_1", "u_1", base), NewEvent("ord_1"), key("k1", "h1", later)); err != nil {
				t.Fatal(err)
			}
			_, _, err := s.CreateOrder(ctx(t), NewOrder("ord_2", "u_1", base), NewEvent("ord_2"), key("k1", "h2", later))
			wantCode(t, "same key, other request", err, orderflow.EConflict)
			_, err = s.Order(ctx(t), "ord_2")
			wantCode(t, "the conflicting order", err, orderflow.ENotFound)
		}},
		{"ExpiredKeyIsAbsent", func(t *testing.T, s orderflow.OrderStore) {
			past := time.Now().Add(-time.Minute)
			if _, _, err := s.CreateOrder(ctx(t), NewOrder("ord_1", "u_1", base), NewEvent("ord_1"), key("k1", "h1", past)); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct{ id, hash string }{{"ord_2", "h1"}, {"ord_3", "h2"}} {
				// Each create re-records the key as expired, so the next one
				// finds it expired again.
				o := NewOrder(tc.id, "u_1", base)
				got, replay, err := s.CreateOrder(ctx(t), o, NewEvent(tc.id), key("k1", tc.hash, past))
				if err != nil || replay {
					t.Fatalf("%s under an expired key = replay %v, err %v; want a new order", tc.id, replay, err)
				}
				equalOrder(t, tc.id, got, o)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

func testOrder(t *testing.T, open func(t *testing.T) orderflow.OrderStore) {
	s := open(t)
	mustCreate(t, s, "ord_1", "u_1", base)
	for _, id := range []string{"ord_2", "", "ord_1 ", "'; DROP TABLE orders; --"} {
		_, err := s.Order(ctx(t), id)
		wantCode(t, fmt.Sprintf("Order(%q)", id), err, orderflow.ENotFound)
	}
}

func testOrders(t *testing.T, open func(t *testing.T) orderflow.OrderStore) {
	s := open(t)
	// 13 orders of three users; pairs share a created_at so the id breaks
	// ties; every third one is cancelled so the status filter has both.
	var all []*orderflow.Order
	for i := range 13 {
		id := fmt.Sprintf("ord_%02d", i)
		o := mustCreate(t, s, id, fmt.Sprintf("u_%d", i%3), base.Add(time.Duration(i/2)*time.Second))
		if i%3 == 0 {
			var err error
			if o, err = s.Transition(ctx(t), id, orderflow.ActionCancel); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, o)
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.After(b.CreatedAt)
		}
		return a.ID > b.ID
	})
	tests := []struct {
		name   string
		filter orderflow.OrderFilter
	}{
		{"All", orderflow.OrderFilter{}},
		{"User", orderflow.OrderFilter{UserID: "u_1"}},
		{"Status", orderflow.OrderFilter{Status: orderflow.StatusPendingReview}},
		{"UserAndStatus", orderflow.OrderFilter{UserID: "u_0", Status: orderflow.StatusCancelled}},
		{"NoMatch", orderflow.OrderFilter{UserID: "u_9"}},
	}
	for _, tc := range tests {
		for _, limit := range []int{1, 4, 200} {
			t.Run(fmt.Sprintf("%s/Limit%d", tc.name, limit), func(t *testing.T) {
				var want []string
				for _, o := range all {
					if (tc.filter.UserID == "" || o.UserID == tc.filter.UserID) && (tc.filter.Status == "" || o.Status == tc.filter.Status) {
						want = append(want, o.ID)
					}
				}
				var got []string
				f := tc.filter
				f.Limit = limit
				for page := 0; ; page++ {
					if page > len(all)+1 {
						t.Fatalf("pagination does not end; got %v so far", got)
					}
					os, err := s.Orders(ctx(t), f)
					if err != nil {
						t.Fatalf("Orders(%+v): %v", f, err)
					}
					if len(os) > limit {
						t.Fatalf("page of %d, limit %d", len(os), limit)
					}
					for _, o := range os {
						got = append(got, o.ID)
					}
					if len(os) < limit {
						break
					}
					last := os[len(os)-1]
					f.After = &orderflow.OrderCursor{CreatedAt: last.CreatedAt, ID: last.ID}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("ids %v\nwant %v", got, want)
				}
			})
		}
	}
	t.Run("PagesHoldWholeOrders", func(t *testing.T) {
		os, err := s.Orders(ctx(t), orderflow.OrderFilter{Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range os {
			equalOrder(t, o.ID, o, all[i])
		}
	})
}

func testTransition(t *testing.T, open func(t *testing.T) orderflow.OrderStore) {
	// Each start state is reached the way production reaches it; version is
	// what the order has there.
	starts := map[orderflow.Status]func(t *testing.T, s orderflow.OrderStore){
		orderflow.StatusPendingReview: func(*testing.T, orderflow.OrderStore) {},
		orderflow.StatusInReview:      decided(orderflow.DecisionReview),
		orderflow.StatusApproved:      decided(orderflow.DecisionApprove),
		orderflow.StatusRejected:      decided(orderflow.DecisionReject),
		orderflow.StatusCancelled: func(t *testing.T, s orderflow.OrderStore) {
			if _, err := s.Transition(ctx(t), "ord_1", orderflow.ActionCancel); err != nil {
				t.Fatal(err)
			}
		},
		orderflow.StatusFulfilled: func(t *testing.T, s orderflow.OrderStore) {
			decided(orderflow.DecisionApprove)(t, s)
			if _, err := s.Transition(ctx(t), "ord_1", orderflow.ActionFulfill); err != nil {
				t.Fatal(err)
			}
		},
	}
	tests := []struct {
		from    orderflow.Status
		version int64
		action  orderflow.Action
		want    orderflow.Status // "" for a conflict
		changed bool
	}{
		{orderflow.StatusPendingReview, 1, orderflow.ActionCancel, orderflow.StatusCancelled, true},
		{orderflow.StatusPendingReview, 1, orderflow.ActionFulfill, "", false},
		{orderflow.StatusInReview, 2, orderflow.ActionCancel, orderflow.StatusCancelled, true},
		{orderflow.StatusInReview, 2, orderflow.ActionFulfill, "", false},
		{orderflow.StatusApproved, 2, orderflow.ActionCancel, orderflow.StatusCancelled, true},
		{orderflow.StatusApproved, 2, orderflow.ActionFulfill, orderflow.StatusFulfilled, true},
		{orderflow.StatusRejected, 2, orderflow.ActionCancel, "", false},
		{orderflow.StatusRejected, 2, orderflow.ActionFulfill, "", false},
		{orderflow.StatusCancelled, 2, orderflow.ActionCancel, orderflow.StatusCancelled, false},
		{orderflow.StatusCancelled, 2, orderflow.ActionFulfill, "", false},
		{orderflow.StatusFulfilled, 3, orderflow.ActionFulfill, orderflow.StatusFulfilled, false},
		{orderflow.StatusFulfilled, 3, orderflow.ActionCancel, "", false},
	}
	for _, tc := range tests {
		outcome := "Conflict"
		if tc.want != "" {
			outcome = map[bool]string{true: "Changed", false: "Unchanged"}[tc.changed]
		}
		t.Run(fmt.Sprintf("%s/%s/%s", tc.from, tc.action, outcome), func(t *testing.T) {
			s := open(t)
			mustCreate(t, s, "ord_1", "u_1", base)
			starts[tc.from](t, s)
			before := wantStatus(t, s, "ord_1", tc.from, tc.version)
			histBefore, err := s.History(ctx(t), "ord_1")
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Transition(ctx(t), "ord_1", tc.action)
			if tc.want == "" {
				wantCode(t, "forbidden transition", err, orderflow.EConflict)
				equalOrder(t, "after a conflict", mustOrder(t, s, "ord_1"), before)
				return
			}
			if err != nil {
				t.Fatalf("Transition: %v", err)
			}
			if !tc.changed {
				equalOrder(t, "repeat answer", got, before)
				equalOrder(t, "after a repeat", mustOrder(t, s, "ord_1"), before)
				hist, err := s.History(ctx(t), "ord_1")
				if err != nil || len(hist) != len(histBefore) {
					t.Fatalf("a repeat changed the history: %d entries, was %d (err %v)", len(hist), len(histBefore), err)
				}
				return
			}
			if got.Status != tc.want || got.Version != tc.version+1 || got.UpdatedAt.Before(before.UpdatedAt) {
				t.Fatalf("got %s v%d updated %v; want %s v%d updated no earlier than %v",
					got.Status, got.Version, got.UpdatedAt, tc.want, tc.version+1, before.UpdatedAt)
			}
			equalOrder(t, "read back", mustOrder(t, s, "ord_1"), got)
			hist, err := s.History(ctx(t), "ord_1")
			if err != nil {
				t.Fatal(err)
			}
			last := hist[len(hist)-1]
			if last.Kind != orderflow.HistoryTransition || last.From != tc.from || last.To != tc.want ||
				last.Cause != string(tc.action) || last.Version != got.Version {
				t.Fatalf("last history entry %+v, want the %s transition", last, tc.action)
			}
		})
	}
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := open(t).Transition(ctx(t), "ord_missing", orderflow.ActionCancel)
		wantCode(t, "Transition of a missing order", err, orderflow.ENotFound)
	})
}

// decided returns a step that records and applies the engine's verdict d on
// ord_1.
func decided(d orderflow.Decision) func(t *testing.T, s orderflow.OrderStore) {
	return func(t *testing.T, s orderflow.OrderStore) {
		t.Helper()
		mustRecord(t, s, NewCallback("ord_1", orderflow.EventRiskDecided, d, 0.5, "v3"), orderflow.Accepted)
		mustApply(t, s, "ord_1", 1)
	}
}

func testPrune(t *testing.T, open func(t *testing.T) orderflow.OrderStore) {
	s := open(t)
	now := time.Now()
	keys := []struct {
		key     string
		expires time.Time
	}{
		{"gone-1", now.Add(-2 * time.Hour)},
		{"gone-2", now.Add(-time.Second)},
		{"kept", now.Add(time.Hour)},
	}
	for i, k := range keys {
		id := fmt.Sprintf("ord_%d", i)
		ik := &orderflow.IdempotencyKey{Key: k.key, RequestHash: "h", ExpiresAt: k.expires}
		if _, _, err := s.CreateOrder(ctx(t), NewOrder(id, "u_1", base), NewEvent(id), ik); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PruneIdempotencyKeys(ctx(t), now)
	if err != nil || n != 2 {
		t.Fatalf("PruneIdempotencyKeys = %d, %v; want 2", n, err)
	}
	if n, err := s.PruneIdempotencyKeys(ctx(t), now); err != nil || n != 0 {
		t.Fatalf("second prune = %d, %v; want 0", n, err)
	}
	// The kept key still answers; the orders of pruned keys stay.
	_, replay, err := s.CreateOrder(ctx(t), NewOrder("ord_x", "u_1", base), NewEvent("ord_x"),
		&orderflow.IdempotencyKey{Key: "kept", RequestHash: "h", ExpiresAt: now.Add(time.Hour)})
	if err != nil || !replay {
		t.Fatalf("kept key = replay %v, err %v; want replay", replay, err)
	}
	mustOrder(t, s, "ord_0")
}
