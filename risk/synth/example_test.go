package synth_test

import (
	"fmt"

	"github.com/orderflow/orderflow/risk/synth"
)

// A load generator sends o.NewOrder() to the API and the label o.Fraud later.
func ExampleGenerate() {
	for _, o := range synth.Generate(synth.Config{Seed: 1}, 3) {
		req := o.NewOrder()
		fmt.Println(o.ID, req.UserID, req.Currency, req.Region, o.Pattern, o.Fraud)
	}
	// Output:
	// ord_s1_1 u13971 CNY north-china velocity_burst true
	// ord_s1_2 u13971 CNY north-china velocity_burst true
	// ord_s1_3 u13971 CNY north-china velocity_burst true
}
