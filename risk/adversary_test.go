package risk_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/risk"
	"github.com/orderflow/orderflow/risk/synth"
)

// TestAdversaryCannotRetryIntoApproval plays the adversarial-retry user
// (same user, same device, each retry 1-7 % cheaper, 30 s-3 min later)
// against the Assessor. Routing is sticky, so every attempt meets the same
// version; the counters remember the attempts, so velocity grows and no retry
// scores below the first attempt. Once an attempt is not approved, no later
// one is.
func TestAdversaryCannotRetryIntoApproval(t *testing.T) {
	for _, start := range []time.Time{
		time.Date(2026, 2, 1, 18, 0, 0, 0, time.UTC), // 02:00 in east-china
		time.Date(2026, 2, 1, 14, 0, 0, 0, time.UTC), // 22:00
	} {
		for _, split := range []int{0, 5000, risk.Buckets} {
			for user := range 5 {
				name := fmt.Sprintf("start=%02d:00Z/split=%d/user=%d", start.Hour(), split, user)
				t.Run(name, func(t *testing.T) {
					a := newAssessor(t, split)
					adv := synth.NewAdversary(uint64(user), "u_adv"+strconv.Itoa(user), 600_000, start)
					var first orderflow.RiskDecision
					stopped := false
					for i := range 20 {
						d, err := a.Assess(context.Background(), adv.Attempt().Order)
						if err != nil {
							t.Fatal(err)
						}
						if i == 0 {
							first = d
						}
						if d.ModelVersion != first.ModelVersion {
							t.Fatalf("attempt %d routed to %s, the first to %s", i+1, d.ModelVersion, first.ModelVersion)
						}
						if d.Score < first.Score {
							t.Errorf("%s: attempt %d scored %.3f, below the first attempt's %.3f", d.ModelVersion, i+1, d.Score, first.Score)
						}
						if stopped && d.Decision == orderflow.DecisionApprove {
							t.Errorf("%s: attempt %d approved after an earlier attempt was stopped", d.ModelVersion, i+1)
						}
						stopped = stopped || d.Decision != orderflow.DecisionApprove
					}
					if !stopped {
						t.Errorf("%s: 20 attempts in a row all approved", first.ModelVersion)
					}
				})
			}
		}
	}
}
