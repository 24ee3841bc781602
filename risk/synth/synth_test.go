package synth_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/orderflow/orderflow/risk/synth"
)

func TestDeterministic(t *testing.T) {
	for _, cfg := range []synth.Config{{Seed: 1}, {Seed: 42, Users: 500, UserPrefix: "run7-"}} {
		a, b := synth.Generate(cfg, 5000), synth.Generate(cfg, 5000)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d: two generations differ", cfg.Seed)
		}
		// A stream is a stream: pulling one by one gives the same orders.
		g := synth.New(cfg)
		for i := range a {
			if o := g.Next(); !reflect.DeepEqual(o, a[i]) {
				t.Fatalf("seed %d: order %d differs between Generate and Next", cfg.Seed, i)
			}
		}
	}
	a, b := synth.Generate(synth.Config{Seed: 1}, 100), synth.Generate(synth.Config{Seed: 2}, 100)
	if reflect.DeepEqual(a, b) {
		t.Fatal("seeds 1 and 2 gave the same stream")
	}
}

// TestGoldenPrefix pins the first orders of seed 1, so a change of the
// generator (which changes the training data, hence v3's weights) is seen.
func TestGoldenPrefix(t *testing.T) {
	os := synth.Generate(synth.Config{Seed: 1}, 6)
	got := []string{}
	for _, o := range os {
		got = append(got, fmt.Sprintf("%s %s %s %d %s %v", o.ID, o.UserID, o.CreatedAt.Format(time.RFC3339Nano), o.AmountMinor, o.Pattern, o.Fraud))
	}
	want := goldenSeed1
	if !reflect.DeepEqual(got, want) {
		t.Errorf("seed 1 starts with\n%q\nwant\n%q", got, want)
	}
}

func TestStream(t *testing.T) {
	const n = 60_000
	os := synth.Generate(synth.Config{Seed: 3, Users: 5000}, n)
	patterns := map[synth.Pattern]int{}
	fraud := 0
	ids := map[string]bool{}
	for i, o := range os {
		if i > 0 && o.CreatedAt.Before(os[i-1].CreatedAt) {
			t.Fatalf("order %d created before its predecessor", i)
		}
		if o.Seq != int64(i+1) {
			t.Fatalf("order %d has Seq %d", i, o.Seq)
		}
		if ids[o.ID] {
			t.Fatalf("duplicate order id %s", o.ID)
		}
		ids[o.ID] = true
		nw := o.NewOrder()
		if err := nw.Validate(); err != nil {
			t.Fatalf("order %d (%s) is not a valid API request: %v", i, o.Pattern, err)
		}
		if o.FraudProb < 0 || o.FraudProb > 1 {
			t.Fatalf("order %d: fraud probability %v", i, o.FraudProb)
		}
		patterns[o.Pattern]++
		if o.Fraud {
			fraud++
		}
	}
	for _, p := range []synth.Pattern{synth.Legit, synth.Burst, synth.UnusualAmount, synth.DeviceChurn, synth.Night, synth.Adversarial} {
		if patterns[p] == 0 {
			t.Errorf("no %s orders in %d", p, n)
		}
	}
	if rate := float64(fraud) / n; rate < 0.02 || rate > 0.08 {
		t.Errorf("fraud rate %.3f, want the documented ~4 %%", rate)
	}
}

func TestAdversary(t *testing.T) {
	start := time.Date(2026, 2, 1, 18, 0, 0, 0, time.UTC)
	a := synth.NewAdversary(7, "u_adv", 600_000, start)
	prev := a.Attempt()
	if prev.AmountMinor != 600_000 || !prev.CreatedAt.Equal(start) || prev.ID != "ord_u_adv_try1" || !prev.Fraud {
		t.Fatalf("first attempt %+v", prev)
	}
	for i := 2; i <= 20; i++ {
		o := a.Attempt()
		if o.UserID != prev.UserID || o.DeviceID != prev.DeviceID {
			t.Fatalf("attempt %d changed user or device", i)
		}
		if r := float64(o.AmountMinor) / float64(prev.AmountMinor); r < 0.93 || r >= 0.99 {
			t.Fatalf("attempt %d: amount ratio %.3f, want in [0.93, 0.99)", i, r)
		}
		if gap := o.CreatedAt.Sub(prev.CreatedAt); gap < 30*time.Second || gap > 3*time.Minute {
			t.Fatalf("attempt %d: gap %v", i, gap)
		}
		prev = o
	}
	c, d := synth.NewAdversary(7, "u_adv", 600_000, start), synth.NewAdversary(7, "u_adv", 600_000, start)
	for range 5 {
		if x, y := c.Attempt(), d.Attempt(); !reflect.DeepEqual(x, y) {
			t.Fatal("two adversaries of one seed differ")
		}
	}
}
