package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

func TestStuckOrders(t *testing.T) {
	st := MustOpen(t)
	ctx := context.Background()
	now := time.Now().UTC()
	orders := []struct {
		age    time.Duration
		status orderflow.Status
	}{
		{3 * time.Hour, orderflow.StatusPendingReview},
		{2 * time.Hour, orderflow.StatusInReview},
		{90 * time.Minute, orderflow.StatusApproved}, // decided: never stuck
		{time.Minute, orderflow.StatusPendingReview}, // young
	}
	for i, o := range orders {
		at := now.Add(-o.age)
		id := fmt.Sprintf("ord_stuck_%d", i)
		_, _, err := st.CreateOrder(ctx, &orderflow.Order{
			ID: id, UserID: "u_1", AmountMinor: 100, Currency: "CNY", Region: "east-china",
			Items: []orderflow.Item{{SKU: "s", Qty: 1}}, Status: o.status, CreatedAt: at, UpdatedAt: at,
		}, &orderflow.Event{ID: "evt_" + id, Type: orderflow.EventOrderCreated, OrderID: id, Payload: []byte(`{}`), CreatedAt: at}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		after   time.Duration
		limit   int
		wantIDs []string
		count   int
	}{
		{"OlderThanAnHour", time.Hour, 10, []string{"ord_stuck_0", "ord_stuck_1"}, 2},
		{"LimitLongestFirst", time.Hour, 1, []string{"ord_stuck_0"}, 2},
		{"NothingThatOld", 4 * time.Hour, 10, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cutoff := now.Add(-tt.after)
			got, err := st.StuckOrders(ctx, cutoff, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, o := range got {
				ids = append(ids, o.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tt.wantIDs) {
				t.Errorf("got %v, want %v", ids, tt.wantIDs)
			}
			if n, err := st.CountStuck(ctx, cutoff); err != nil || n != tt.count {
				t.Errorf("CountStuck = %d, %v; want %d", n, err, tt.count)
			}
		})
	}
}
