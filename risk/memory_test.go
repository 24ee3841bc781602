package risk_test

import (
	"context"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/risk"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

type obs struct {
	id, user, device string
	amount           int64
	at               time.Duration // after t0
}

func observe(t *testing.T, c risk.Counters, o obs) risk.Snapshot {
	t.Helper()
	s, err := c.Observe(context.Background(), risk.Observation{
		OrderID: o.id, UserID: o.user, DeviceID: o.device, AmountMinor: o.amount, At: t0.Add(o.at),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMemoryCountersWindows(t *testing.T) {
	type want struct{ o1h, o24h, dev, prior int }
	for _, tc := range []struct {
		name string
		seq  []obs
		want want // snapshot of the last observation
	}{
		{"FirstOrder", []obs{{"o1", "u", "d1", 100, 0}}, want{1, 1, 1, 0}},
		{"NoDevice", []obs{{"o1", "u", "", 100, 0}}, want{1, 1, 0, 0}},
		{"SameHour", []obs{
			{"o1", "u", "d1", 100, 0}, {"o2", "u", "d1", 100, 10 * time.Minute}, {"o3", "u", "d2", 100, 59 * time.Minute},
		}, want{3, 3, 2, 2}},
		{"ShortWindowExcludesExactlyOneHour", []obs{
			{"o1", "u", "d1", 100, 0}, {"o2", "u", "d1", 100, time.Hour},
		}, want{1, 2, 1, 1}},
		{"LongWindowEdge", []obs{
			{"o1", "u", "d1", 100, 0}, {"o2", "u", "d2", 100, time.Hour}, {"o3", "u", "d3", 100, 24 * time.Hour},
		}, want{1, 2, 2, 2}},
		{"OtherUsersDoNotCount", []obs{
			{"o1", "a", "d1", 100, 0}, {"o2", "b", "d2", 100, time.Minute}, {"o3", "a", "d3", 100, 2 * time.Minute},
		}, want{2, 2, 2, 1}},
		{"DuplicateNotCounted", []obs{
			{"o1", "u", "d1", 100, 0}, {"o2", "u", "d2", 100, time.Minute}, {"o2", "u", "d2", 100, time.Minute},
		}, want{2, 2, 2, 2}},
		{"OutOfOrderLaterExcluded", []obs{
			{"o1", "u", "d1", 100, 30 * time.Minute}, {"o2", "u", "d2", 100, 0},
		}, want{1, 1, 1, 1}},
		{"DevicesDistinct", []obs{
			{"o1", "u", "d1", 100, 0}, {"o2", "u", "d1", 100, 1}, {"o3", "u", "d2", 100, 2}, {"o4", "u", "d1", 100, 3},
		}, want{4, 4, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := risk.NewMemoryCounters(risk.MemoryConfig{})
			var s risk.Snapshot
			for _, o := range tc.seq {
				s = observe(t, c, o)
			}
			got := want{s.Orders1h, s.Orders24h, s.Devices24h, s.PriorOrders}
			if got != tc.want {
				t.Errorf("got %+v, want %+v (snapshot %+v)", got, tc.want, s)
			}
		})
	}
}

func TestMemoryCountersManyDevices(t *testing.T) {
	c := risk.NewMemoryCounters(risk.MemoryConfig{})
	var s risk.Snapshot
	for i := range 50 {
		s = observe(t, c, obs{"o" + strconv.Itoa(i), "u", "d" + strconv.Itoa(i%40), 100, time.Duration(i) * time.Minute})
	}
	if s.Devices24h != 40 || s.Orders24h != 50 || s.Orders1h != 50 {
		t.Errorf("got devices %d, 24h %d, 1h %d, want 40, 50, 50", s.Devices24h, s.Orders24h, s.Orders1h)
	}
}

func TestMemoryCountersMaxEvents(t *testing.T) {
	c := risk.NewMemoryCounters(risk.MemoryConfig{MaxEvents: 8})
	var s risk.Snapshot
	for i := range 20 {
		s = observe(t, c, obs{"o" + strconv.Itoa(i), "u", "d", 100, time.Duration(i) * time.Second})
	}
	if s.Orders1h != 8 || s.PriorOrders != 19 {
		t.Errorf("got 1h %d, prior %d; want counts saturated at 8 and the full history 19", s.Orders1h, s.PriorOrders)
	}
}

func TestMemoryCountersAmountHistory(t *testing.T) {
	c := risk.NewMemoryCounters(risk.MemoryConfig{})
	amounts := []int64{1000, 4000, 2000}
	for i, a := range amounts {
		observe(t, c, obs{"o" + strconv.Itoa(i), "u", "d", a, time.Duration(i) * time.Hour})
	}
	s := observe(t, c, obs{"o9", "u", "d", 1, 5 * time.Hour})
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
	if !s.FirstSeen.Equal(t0) {
		t.Errorf("FirstSeen = %v, want %v", s.FirstSeen, t0)
	}
}

func TestMemoryCountersEviction(t *testing.T) {
	for _, tc := range []struct {
		name      string
		retention time.Duration
		idle      time.Duration
		remember  bool
		orders24h int // of the order one hour after the idle time
	}{
		{"IdleUnderDayRemembered", 0, 23 * time.Hour, true, 2},
		{"IdleOverDayForgotten", 0, 25 * time.Hour, false, 1},
		{"LongRetentionRemembers", 7 * 24 * time.Hour, 3 * 24 * time.Hour, true, 1},
		{"LongRetentionForgets", 7 * 24 * time.Hour, 8 * 24 * time.Hour, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := risk.NewMemoryCounters(risk.MemoryConfig{Retention: tc.retention, Shards: 1})
			observe(t, c, obs{"o1", "idle", "d", 100, 0})
			observe(t, c, obs{"o2", "idle", "d", 100, time.Minute})
			// Another user's traffic advances the shard's clock and sweeps.
			for i := range 10 {
				observe(t, c, obs{"x" + strconv.Itoa(i), "busy", "d", 100, tc.idle + time.Duration(i)*time.Minute})
			}
			if got, want := c.Users(), 1+btoi(tc.remember); got != want {
				t.Errorf("Users() = %d, want %d", got, want)
			}
			s := observe(t, c, obs{"o3", "idle", "d", 100, tc.idle + time.Hour})
			if got := s.PriorOrders > 0; got != tc.remember {
				t.Errorf("PriorOrders = %d after %v idle, remembered = %v, want %v", s.PriorOrders, tc.idle, got, tc.remember)
			}
			if s.Orders24h != tc.orders24h {
				t.Errorf("Orders24h = %d, want %d", s.Orders24h, tc.orders24h)
			}
		})
	}
}

func TestMemoryCountersSweep(t *testing.T) {
	c := risk.NewMemoryCounters(risk.MemoryConfig{})
	for i := range 100 {
		observe(t, c, obs{"o" + strconv.Itoa(i), "u" + strconv.Itoa(i), "d", 100, 0})
	}
	c.Sweep(t0.Add(23 * time.Hour))
	if got := c.Users(); got != 100 {
		t.Fatalf("after 23 h: %d users, want 100", got)
	}
	c.Sweep(t0.Add(25 * time.Hour))
	if got := c.Users(); got != 0 {
		t.Fatalf("after 25 h: %d users, want 0", got)
	}
}

func TestMemoryCountersContextDone(t *testing.T) {
	c := risk.NewMemoryCounters(risk.MemoryConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Observe(ctx, risk.Observation{UserID: "u", At: t0}); err != context.Canceled {
		t.Fatalf("Observe on a done context: %v, want context.Canceled", err)
	}
}

// TestMemoryCountersConcurrent: many goroutines, shared users; under -race.
// Every order is counted exactly once, whatever the interleaving.
func TestMemoryCountersConcurrent(t *testing.T) {
	c := risk.NewMemoryCounters(risk.MemoryConfig{Shards: 4})
	const workers, perWorker, users = 8, 500, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				id := strconv.Itoa(w) + "-" + strconv.Itoa(i)
				_, err := c.Observe(context.Background(), risk.Observation{
					OrderID: id, UserID: "u" + strconv.Itoa(i%users), DeviceID: "d" + strconv.Itoa(w),
					AmountMinor: 100, At: t0.Add(time.Duration(i) * time.Millisecond),
				})
				if err != nil {
					t.Error(err)
					return
				}
				// A redelivery of the same order must not count.
				_, _ = c.Observe(context.Background(), risk.Observation{
					OrderID: id, UserID: "u" + strconv.Itoa(i%users), AmountMinor: 100, At: t0.Add(time.Duration(i) * time.Millisecond),
				})
			}
		})
	}
	wg.Wait()
	for u := range users {
		s := observe(t, c, obs{"final", "u" + strconv.Itoa(u), "", 100, time.Second})
		if want := workers*perWorker/users + 1; s.Orders1h != want || s.PriorOrders != want-1 || s.Devices24h != workers {
			t.Errorf("user %d: 1h %d, prior %d, devices %d; want %d, %d, %d", u, s.Orders1h, s.PriorOrders, s.Devices24h, want, want-1, workers)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestMemoryCountersForgetWithoutSweep: a user idle past the retention is
// new again even when no sweep ran in between (one shard, few users).
func TestMemoryCountersForgetWithoutSweep(t *testing.T) {
	c := risk.NewMemoryCounters(risk.MemoryConfig{Retention: 48 * time.Hour})
	observe(t, c, obs{"o1", "u", "d", 100, 0})
	s := observe(t, c, obs{"o2", "u", "d", 100, 48*time.Hour + time.Second})
	if s.PriorOrders != 0 || !s.FirstSeen.Equal(t0.Add(48*time.Hour+time.Second)) {
		t.Errorf("after the retention: prior %d, first seen %v; want a new user", s.PriorOrders, s.FirstSeen)
	}
	s = observe(t, c, obs{"o3", "u", "d", 100, 48*time.Hour + 2*time.Second})
	if s.PriorOrders != 1 || s.Orders1h != 2 {
		t.Errorf("next order: prior %d, 1h %d; want 1, 2", s.PriorOrders, s.Orders1h)
	}
}
