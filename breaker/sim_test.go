package breaker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/orderflow/orderflow/breaker"
	"github.com/orderflow/orderflow/breaker/breakersim"
)

// fixed returns a jitter source that always answers r, so that the open
// periods — and so the whole run — are deterministic.
func fixed(r float64) breaker.Option {
	return breaker.WithRandom(func() float64 { return r })
}

// The "must show" items, in simulated time at 1,000 calls/s, for the
// default policy and the extremes of the backoff jitter.
func TestScenarios(t *testing.T) {
	for _, jitter := range []float64{0, 0.5, 0.999} {
		t.Run(fmt.Sprintf("jitter=%v", jitter), func(t *testing.T) {
			f := breakersim.Breaker(breaker.Config{}, fixed(jitter))

			out := breakersim.Run(breakersim.Outage(), f, breakersim.Virtual)
			t.Logf("%+v", out)
			if out.RejectedBeforeFault != 0 {
				t.Errorf("outage: %d calls rejected while healthy, want 0", out.RejectedBeforeFault)
			}
			// (a) 100% errors trip within 500ms.
			if out.TripAfter < 0 || out.TripAfter > 500*time.Millisecond {
				t.Errorf("outage: tripped after %v, want ≤ 500ms", out.TripAfter)
			}
			// (d) once open, at most 10% of calls reach the failing dependency.
			if out.ReachedDuringFault > 0.10 {
				t.Errorf("outage: %.1f%% of calls reached the dependency after the first second, want ≤ 10%%", 100*out.ReachedDuringFault)
			}
			// (c) within 1s plus a probe round trip of healing, ≥ 95% pass.
			if out.PassAfterHeal < 0.95 {
				t.Errorf("outage: %.1f%% of calls passed after heal+1s+RTT, want ≥ 95%%", 100*out.PassAfterHeal)
			}

			brown := breakersim.Run(breakersim.Brownout(), f, breakersim.Virtual)
			t.Logf("%+v", brown)
			if brown.RejectedBeforeFault != 0 {
				t.Errorf("brownout: %d calls rejected while healthy, want 0", brown.RejectedBeforeFault)
			}
			// The short window catches a partial outage within MinVolume
			// calls; the full window alone would need ~8s.
			if brown.TripAfter < 0 || brown.TripAfter > 500*time.Millisecond {
				t.Errorf("brownout: tripped after %v, want ≤ 500ms", brown.TripAfter)
			}
			if brown.ReachedDuringFault > 0.10 {
				t.Errorf("brownout: %.1f%% of calls reached the dependency after the first second, want ≤ 10%%", 100*brown.ReachedDuringFault)
			}

			slow := breakersim.Run(breakersim.SlowDown(), f, breakersim.Virtual)
			t.Logf("%+v", slow)
			if slow.RejectedBeforeFault != 0 {
				t.Errorf("slowdown: %d calls rejected while healthy, want 0", slow.RejectedBeforeFault)
			}
			// (b) 5ms → 200ms with no errors trips within 1s.
			if slow.TripAfter < 0 || slow.TripAfter > time.Second {
				t.Errorf("slowdown: tripped after %v, want ≤ 1s", slow.TripAfter)
			}
			// No recovery bound here: the breaker opened 700ms into the
			// slowdown and its second backoff (2s and up) may end after
			// heal+1s. That is the price of exponential backoff, by design.
		})
	}
}
