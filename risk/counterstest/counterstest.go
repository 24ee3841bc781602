// Package counterstest is the contract suite of risk.Counters: every
// implementation (in memory now, Redis later) must pass it, so the features
// a model sees do not depend on where the counters live.
package counterstest

import (
	"context"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/risk"
)

// T0 is the base time of the suite's orders. Implementations that keep
// state across tests (a shared Redis) should namespace per test; the suite
// uses user ids unique to each subtest.
var T0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

type obs struct {
	id, user, device string
	amount           int64
	at               time.Duration // after T0
}

func observe(t *testing.T, c risk.Counters, user string, o obs) risk.Snapshot {
	t.Helper()
	if o.user != "" {
		user = o.user
	}
	s, err := c.Observe(context.Background(), risk.Observation{
		OrderID: user + "/" + o.id, UserID: user, DeviceID: o.device, AmountMinor: o.amount, At: T0.Add(o.at),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Test runs the contract against counters made by newCounters, called once
// per subtest.
func Test(t *testing.T, newCounters func(t *testing.T) risk.Counters) {
	t.Run("Windows", func(t *testing.T) { testWindows(t, newCounters) })
	t.Run("AmountHistory", func(t *testing.T) { testAmountHistory(t, newCounters(t)) })
	t.Run("ContextDone", func(t *testing.T) { testContextDone(t, newCounters(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newCounters(t)) })
}

func testWindows(t *testing.T, newCounters func(t *testing.T) risk.Counters) {
	type want struct{ o1h, o24h, dev, prior int }
	for _, tc := range []struct {
		name string
		seq  []obs
		want want // snapshot of the last observation
	}{
		{"FirstOrder", []obs{{"o1", "", "d1", 100, 0}}, want{1, 1, 1, 0}},
		{"NoDevice", []obs{{"o1", "", "", 100, 0}}, want{1, 1, 0, 0}},
		{"SameHour", []obs{
			{"o1", "", "d1", 100, 0}, {"o2", "", "d1", 100, 10 * time.Minute}, {"o3", "", "d2", 100, 59 * time.Minute},
		}, want{3, 3, 2, 2}},
		{"ShortWindowExcludesExactlyOneHour", []obs{
			{"o1", "", "d1", 100, 0}, {"o2", "", "d1", 100, time.Hour},
		}, want{1, 2, 1, 1}},
		{"LongWindowEdge", []obs{
			{"o1", "", "d1", 100, 0}, {"o2", "", "d2", 100, time.Hour}, {"o3", "", "d3", 100, 24 * time.Hour},
		}, want{1, 2, 2, 2}},
		{"OtherUsersDoNotCount", []obs{
			{"o1", "", "d1", 100, 0}, {"o2", "other", "d2", 100, time.Minute}, {"o3", "", "d3", 100, 2 * time.Minute},
		}, want{2, 2, 2, 1}},
		{"DuplicateNotCounted", []obs{
			{"o1", "", "d1", 100, 0}, {"o2", "", "d2", 100, time.Minute}, {"o2", "", "d2", 100, time.Minute},
		}, want{2, 2, 2, 2}},
		{"OutOfOrderLaterExcluded", []obs{
			{"o1", "", "d1", 100, 30 * time.Minute}, {"o2", "", "d2", 100, 0},
		}, want{1, 1, 1, 1}},
		{"DevicesDistinct", []obs{
			{"o1", "", "d1", 100, 0}, {"o2", "", "d1", 100, 1}, {"o3", "", "d2", 100, 2}, {"o4", "", "d1", 100, 3},
		}, want{4, 4, 2, 3}},
		{"ManyDevices", func() []obs {
			var seq []obs
			for i := range 50 {
				seq = append(seq, obs{"o" + strconv.Itoa(i), "", "d" + strconv.Itoa(i%40), 100, time.Duration(i) * time.Minute})
			}
			return seq
		}(), want{50, 50, 40, 49}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCounters(t)
			user := "u-" + tc.name
			var s risk.Snapshot
			for _, o := range tc.seq {
				if o.user != "" {
					o.user = user + "-" + o.user
				}
				s = observe(t, c, user, o)
			}
			got := want{s.Orders1h, s.Orders24h, s.Devices24h, s.PriorOrders}
			if got != tc.want {
				t.Errorf("got %+v, want %+v (snapshot %+v)", got, tc.want, s)
			}
		})
	}
}

func testAmountHistory(t *testing.T, c risk.Counters) {
	amounts := []int64{1000, 4000, 2000}
	for i, a := range amounts {
		observe(t, c, "u-amounts", obs{"o" + strconv.Itoa(i), "", "d", a, time.Duration(i) * time.Hour})
	}
	s := observe(t, c, "u-amounts", obs{"o9", "", "d", 1, 5 * time.Hour})
	var mean, sq float64
	for _, a := range amounts {
		mean += math.Log(float64(a)) / 3
	}
	for _, a := range amounts {
		sq += (math.Log(float64(a)) - mean) * (math.Log(float64(a)) - mean) / 3
	}
	if s.PriorOrders != 3 || math.Abs(s.MeanLogAmount-mean) > 1e-9 || math.Abs(s.StdLogAmount-math.Sqrt(sq)) > 1e-9 {
		t.Errorf("got prior %d mean %v std %v; want 3, %v, %v", s.PriorOrders, s.MeanLogAmount, s.StdLogAmount, mean, math.Sqrt(sq))
	}
	if !s.FirstSeen.Equal(T0) {
		t.Errorf("FirstSeen = %v, want %v", s.FirstSeen, T0)
	}
}

func testContextDone(t *testing.T, c risk.Counters) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Observe(ctx, risk.Observation{OrderID: "o", UserID: "u-ctx", At: T0}); err == nil {
		t.Fatal("Observe on a done context succeeded")
	}
}

// testConcurrent: goroutines observing shared users, each order twice (a
// redelivery); every order counts exactly once, whatever the interleaving.
func testConcurrent(t *testing.T, c risk.Counters) {
	const workers, perWorker, users = 8, 200, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				o := risk.Observation{
					OrderID: "c" + strconv.Itoa(w) + "-" + strconv.Itoa(i), UserID: "u-conc" + strconv.Itoa(i%users),
					DeviceID: "d" + strconv.Itoa(w), AmountMinor: 100, At: T0.Add(time.Duration(i) * time.Millisecond),
				}
				for range 2 {
					if _, err := c.Observe(context.Background(), o); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for u := range users {
		s := observe(t, c, "u-conc"+strconv.Itoa(u), obs{"final", "", "", 100, time.Second})
		if want := workers*perWorker/users + 1; s.Orders1h != want || s.PriorOrders != want-1 || s.Devices24h != workers {
			t.Errorf("user %d: 1h %d, prior %d, devices %d; want %d, %d, %d", u, s.Orders1h, s.PriorOrders, s.Devices24h, want, want-1, workers)
		}
	}
}
