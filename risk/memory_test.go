package risk_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/orderflow/orderflow/risk"
	"github.com/orderflow/orderflow/risk/counterstest"
)

// TestMemoryCountersContract runs the Counters contract suite.
func TestMemoryCountersContract(t *testing.T) {
	counterstest.Test(t, func(*testing.T) risk.Counters { return risk.NewMemoryCounters(risk.MemoryConfig{}) })
}

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
