package risk_test

import (
	"context"
	"fmt"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/risk"
)

// An engine builds one Assessor and calls Assess for every order.created
// event; the decision is stored, then sent as a callback.
func ExampleAssessor() {
	router, err := risk.NewRouter("rollout-2026-11", 0) // v2.1 for everyone
	if err != nil {
		panic(err)
	}
	a := &risk.Assessor{
		Counters:   risk.NewMemoryCounters(risk.MemoryConfig{}),
		Router:     router,
		Champion:   risk.V21(),
		Challenger: risk.V3(),
		Now:        func() time.Time { return time.Date(2026, 11, 26, 8, 0, 1, 0, time.UTC) },
	}
	o := orderflow.Order{
		ID: "ord_1", UserID: "u_123", AmountMinor: 129900, Currency: "CNY", Region: "east-china",
		Items: []orderflow.Item{{SKU: "sku-1", Qty: 2}}, DeviceID: "d-9",
		CreatedAt: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC), // 16:00 in east-china
	}
	d, err := a.Assess(context.Background(), o)
	if err != nil {
		panic(err)
	}
	fmt.Println(d.EventID, d.ModelVersion, d.Decision, d.Score, "shadow:", d.ShadowVersion)
	// Output: evt_dec_ord_1 v2.1 approve 0.15 shadow: v3
}

// Raising the split moves users to the challenger and never back.
func ExampleRouter() {
	r, err := risk.NewRouter("salt", 0)
	if err != nil {
		panic(err)
	}
	users := make([]string, 1000)
	for i := range users {
		users[i] = fmt.Sprintf("u_%d", i)
	}
	for _, split := range []int{0, 2500, 5000, 10000} {
		if err := r.SetChallengerBuckets(split); err != nil {
			panic(err)
		}
		n := 0
		for _, u := range users {
			if r.Challenger(u) {
				n++
			}
		}
		fmt.Printf("split %5d: %3d of %d users on the challenger\n", split, n, len(users))
	}
	// Output:
	// split     0:   0 of 1000 users on the challenger
	// split  2500: 248 of 1000 users on the challenger
	// split  5000: 504 of 1000 users on the challenger
	// split 10000: 1000 of 1000 users on the challenger
}

// AUC counts ties between a fraud and a legitimate order as one half.
func ExampleAUC() {
	scores := []float64{0.1, 0.4, 0.4, 0.8}
	fraud := []bool{false, false, true, true}
	auc, ok := risk.AUC(scores, fraud)
	fmt.Println(auc, ok)
	// Output: 0.875 true
}
