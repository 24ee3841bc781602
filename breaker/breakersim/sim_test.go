package breakersim_test

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow/breaker/breakersim"
)

// none admits everything: the baseline every breaker is measured against.
type none struct{ closed *bool }

func (none) Allow() (func(error, time.Duration), bool) { return func(error, time.Duration) {}, true }
func (n none) Close()                                  { *n.closed = true }

func TestRunWithoutBreaker(t *testing.T) {
	closed := false
	r := breakersim.Run(breakersim.Outage(), func(breakersim.Clock) breakersim.Adapter { return none{&closed} }, breakersim.Virtual)
	if r.Calls != 16000 || r.Admitted != 16000 {
		t.Errorf("calls %d admitted %d, want 16000 each", r.Calls, r.Admitted)
	}
	if r.FailedCalls != 3000 {
		t.Errorf("failed %d, want the 3000 calls of the 3s outage", r.FailedCalls)
	}
	if r.TripAfter != -1 || r.ReachedDuringFault != 1 || r.PassAfterHeal != 1 {
		t.Errorf("result %+v: want never tripped, everything through", r)
	}
	if !closed {
		t.Error("Close not called")
	}
}

func TestVirtualClockNeverGoesBack(t *testing.T) {
	start := time.Unix(100, 0)
	c := breakersim.NewVirtualClock(start)
	c.Set(2 * time.Second)
	c.Set(time.Second)
	if got := c.Now(); !got.Equal(start.Add(2 * time.Second)) {
		t.Fatalf("Now = %v, want %v", got, start.Add(2*time.Second))
	}
}
