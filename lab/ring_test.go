package lab_test

import (
	"context"
	"testing"

	"github.com/orderflow/orderflow/hashring"
	"github.com/orderflow/orderflow/hashring/ringmeasure"
	"github.com/orderflow/orderflow/lab"
)

// TestRingExperimentQuick checks the ring experiment's figures that are
// properties, not timings: no key moves between old members, and bounded
// loads stay within c.
func TestRingExperimentQuick(t *testing.T) {
	e, ok := lab.Lookup("ring")
	if !ok {
		t.Fatal("ring experiment not registered")
	}
	r, err := lab.RunOne(context.Background(), e, lab.Options{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, m := range r.Measurements {
		found[m.Name] = m.Median
	}
	if v, ok := found["keys moved between old members, 10 → 11"]; !ok || v != 0 {
		t.Errorf("keys moved between old members = %v (reported: %v), want 0", v, ok)
	}
	if r.Table == "" {
		t.Error("no table")
	}
	b := ringmeasure.MeasureBalance(lab.BoundedImpl(hashring.DefaultLoadFactor), 10, 0, ringmeasure.Config{Keys: 5_000, Sets: 2})
	if b.MaxAvg.Max > hashring.DefaultLoadFactor+10.0/5_000 {
		t.Errorf("bounded max/avg = %.3f, over c = %v", b.MaxAvg.Max, hashring.DefaultLoadFactor)
	}
}
