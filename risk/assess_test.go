package risk_test

import (
	"context"
	"errors"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/risk"
)

func testOrder(id, user string, amount int64, at time.Time) orderflow.Order {
	return orderflow.Order{
		ID: id, UserID: user, AmountMinor: amount, Currency: "CNY", Region: "east-china",
		Items: []orderflow.Item{{SKU: "sku-1", Qty: 2}}, DeviceID: "d-1", IP: "203.0.113.7",
		Status: orderflow.StatusPendingReview, CreatedAt: at,
	}
}

func newAssessor(t *testing.T, split int) *risk.Assessor {
	t.Helper()
	r, err := risk.NewRouter("test", split)
	if err != nil {
		t.Fatal(err)
	}
	decidedAt := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	return &risk.Assessor{
		Counters: risk.NewMemoryCounters(risk.MemoryConfig{}),
		Router:   r, Champion: risk.V21(), Challenger: risk.V3(),
		Now: func() time.Time { return decidedAt },
	}
}

func TestAssessFillsDecision(t *testing.T) {
	for _, tc := range []struct {
		name          string
		split         int
		model, shadow string
	}{
		{"ChampionForAll", 0, "v2.1", "v3"},
		{"ChallengerForAll", risk.Buckets, "v3", "v2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAssessor(t, tc.split)
			o := testOrder("ord_1", "u_1", 129900, t0)
			d, err := a.Assess(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if d.OrderID != "ord_1" || d.UserID != "u_1" || d.EventType != orderflow.EventRiskDecided || d.EventID != "evt_dec_ord_1" {
				t.Errorf("identity fields: %+v", d)
			}
			if d.ModelVersion != tc.model || d.ShadowVersion != tc.shadow {
				t.Errorf("model %s shadow %s, want %s, %s", d.ModelVersion, d.ShadowVersion, tc.model, tc.shadow)
			}
			if !d.DecidedAt.Equal(a.Now()) {
				t.Errorf("DecidedAt = %v, want the injected clock", d.DecidedAt)
			}
			cb := d.Callback()
			if err := cb.Validate(); err != nil {
				t.Errorf("callback of the decision is invalid: %v", err)
			}
			routed, shadow := risk.Scorer(risk.V21()), risk.Scorer(risk.V3())
			if tc.model == "v3" {
				routed, shadow = shadow, routed
			}
			f := risk.Extract(&o, risk.Snapshot{Orders1h: 1, Orders24h: 1, Devices24h: 1, FirstSeen: t0})
			if d.Score != routed.Score(f) || d.ShadowScore != shadow.Score(f) {
				t.Errorf("scores %v / %v, want %v / %v", d.Score, d.ShadowScore, routed.Score(f), shadow.Score(f))
			}
			if d.Decision != risk.ThresholdsOf(routed).Decide(d.Score) {
				t.Errorf("decision %s does not follow %s's thresholds at %v", d.Decision, routed.Version(), d.Score)
			}
		})
	}
}

func TestAssessNoChallenger(t *testing.T) {
	a := newAssessor(t, risk.Buckets)
	a.Challenger = nil
	d, err := a.Assess(context.Background(), testOrder("ord_1", "u_1", 100, t0))
	if err != nil {
		t.Fatal(err)
	}
	if d.ModelVersion != "v2.1" || d.ShadowVersion != "" || d.ShadowScore != 0 {
		t.Errorf("without a challenger: model %s shadow %q %v", d.ModelVersion, d.ShadowVersion, d.ShadowScore)
	}
}

type failingCounters struct{ err error }

func (f failingCounters) Observe(context.Context, risk.Observation) (risk.Snapshot, error) {
	return risk.Snapshot{}, f.err
}

func TestAssessErrors(t *testing.T) {
	boom := errors.New("boom")
	a := newAssessor(t, 0)
	a.Counters = failingCounters{boom}
	if _, err := a.Assess(context.Background(), testOrder("ord_1", "u", 100, t0)); !errors.Is(err, boom) {
		t.Errorf("counters failure: err %v, want it wrapped", err)
	}
	a = newAssessor(t, 0)
	a.Champion = risk.ScorerFunc(func(risk.Features) float64 { return math.NaN() }).Named("nan", risk.DefaultThresholds)
	_, err := a.Assess(context.Background(), testOrder("ord_1", "u", 100, t0))
	if orderflow.ErrorCode(err) != orderflow.EInternal {
		t.Errorf("NaN score: err %v, want internal", err)
	}
}

// TestAssessVelocityRaisesScore: the same user ordering again and again in
// an hour scores higher with each order after the second (the first carries
// the first-order signal instead) under both versions.
func TestAssessVelocityRaisesScore(t *testing.T) {
	for _, split := range []int{0, risk.Buckets} {
		a := newAssessor(t, split)
		prev := -1.0
		for i := range 8 {
			o := testOrder("ord_"+strconv.Itoa(i), "u_burst", 50000, t0.Add(time.Duration(i)*time.Minute))
			o.DeviceID = "d-" + strconv.Itoa(i)
			d, err := a.Assess(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if i >= 2 && d.Score < prev {
				t.Errorf("%s: order %d scored %v, below the previous %v", d.ModelVersion, i, d.Score, prev)
			}
			prev = d.Score
		}
		if prev < 0.7 {
			t.Errorf("split %d: the 8th order in 8 minutes on 8 devices scored only %v", split, prev)
		}
	}
}

func TestModelByVersion(t *testing.T) {
	for _, v := range []string{"v2.1", "v3"} {
		if m, ok := risk.ModelByVersion(v); !ok || m.Version() != v {
			t.Errorf("ModelByVersion(%q) = %v, %v", v, m, ok)
		}
	}
	if _, ok := risk.ModelByVersion("v4"); ok {
		t.Error("v4 found")
	}
}

// TestAssessConcurrent: one Assessor shared by goroutines while the split
// changes, under -race. A user is never routed to the champion after having
// been routed to the challenger, since the split only grows here.
func TestAssessConcurrent(t *testing.T) {
	a := newAssessor(t, 0)
	var wg sync.WaitGroup
	const workers, perWorker = 4, 300
	seen := make([]map[string]string, workers)
	for w := range workers {
		seen[w] = map[string]string{}
		wg.Go(func() {
			for i := range perWorker {
				u := "u_" + strconv.Itoa(i%50)
				o := testOrder("ord_"+strconv.Itoa(w)+"_"+strconv.Itoa(i), u, 1000, t0.Add(time.Duration(i)*time.Second))
				d, err := a.Assess(context.Background(), o)
				if err != nil {
					t.Error(err)
					return
				}
				if seen[w][u] == "v3" && d.ModelVersion == "v2.1" {
					t.Errorf("user %s moved back from v3 to v2.1 while the split only grew", u)
				}
				seen[w][u] = d.ModelVersion
			}
		})
	}
	wg.Go(func() {
		for split := 0; split <= risk.Buckets; split += 500 {
			if err := a.Router.SetChallengerBuckets(split); err != nil {
				t.Error(err)
			}
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
}

func TestAssessNilRouter(t *testing.T) {
	a := newAssessor(t, risk.Buckets)
	a.Router = nil
	d, err := a.Assess(context.Background(), testOrder("ord_1", "u_1", 100, t0))
	if err != nil {
		t.Fatal(err)
	}
	if d.ModelVersion != "v2.1" || d.ShadowVersion != "v3" {
		t.Errorf("nil router: model %s shadow %s, want v2.1 and shadow v3", d.ModelVersion, d.ShadowVersion)
	}
}
