package risk_test

import (
	"math"
	"testing"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/risk"
)

func TestAUC(t *testing.T) {
	for _, tc := range []struct {
		name   string
		scores []float64
		labels []bool
		want   float64
		ok     bool
	}{
		{"Perfect", []float64{0.1, 0.2, 0.8, 0.9}, []bool{false, false, true, true}, 1, true},
		{"Inverted", []float64{0.9, 0.8, 0.2, 0.1}, []bool{false, false, true, true}, 0, true},
		{"AllTied", []float64{0.5, 0.5, 0.5, 0.5}, []bool{false, true, false, true}, 0.5, true},
		// Pairs (pos, neg): (0.8,0.1) 1, (0.8,0.4) 1, (0.8,0.4) 1,
		// (0.4,0.1) 1, (0.4,0.4) ½, (0.4,0.4) ½ → 5/6.
		{"TiesAcrossClasses", []float64{0.1, 0.4, 0.4, 0.4, 0.8}, []bool{false, false, true, false, true}, 5.0 / 6, true},
		// 1 positive at 0.3 vs negatives 0.1, 0.3, 0.5 → (1 + ½ + 0)/3.
		{"OneTie", []float64{0.1, 0.3, 0.3, 0.5}, []bool{false, true, false, false}, 0.5, true},
		{"NoPositive", []float64{0.1, 0.2}, []bool{false, false}, 0, false},
		{"NoNegative", []float64{0.1, 0.2}, []bool{true, true}, 0, false},
		{"Empty", nil, nil, 0, false},
		{"LengthMismatch", []float64{0.1}, []bool{true, false}, 0, false},
		{"NaNLowest", []float64{math.NaN(), 0.2}, []bool{false, true}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := risk.AUC(tc.scores, tc.labels)
			if ok != tc.ok || math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("AUC = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestAUCBruteForce checks the rank formula against counting pairs.
func TestAUCBruteForce(t *testing.T) {
	scores := []float64{0.3, 0.1, 0.3, 0.7, 0.7, 0.7, 0.2, 0.9, 0.1, 0.3}
	labels := []bool{true, false, false, true, false, true, true, false, true, false}
	var num, den float64
	for i := range scores {
		for j := range scores {
			if labels[i] && !labels[j] {
				den++
				switch {
				case scores[i] > scores[j]:
					num++
				case scores[i] == scores[j]:
					num += 0.5
				}
			}
		}
	}
	got, ok := risk.AUC(scores, labels)
	if !ok || math.Abs(got-num/den) > 1e-12 {
		t.Fatalf("AUC = %v, want %v", got, num/den)
	}
}

func TestThresholdsDecide(t *testing.T) {
	th := risk.Thresholds{Review: 0.4, Reject: 0.7}
	for _, tc := range []struct {
		score float64
		want  orderflow.Decision
	}{
		{0, orderflow.DecisionApprove},
		{0.39999, orderflow.DecisionApprove},
		{0.4, orderflow.DecisionReview},
		{0.69999, orderflow.DecisionReview},
		{0.7, orderflow.DecisionReject},
		{1, orderflow.DecisionReject},
		{math.NaN(), orderflow.DecisionReject},
	} {
		if got := th.Decide(tc.score); got != tc.want {
			t.Errorf("Decide(%v) = %s, want %s", tc.score, got, tc.want)
		}
	}
	noReview := risk.Thresholds{Review: 0.5, Reject: 0.5}
	if got := noReview.Decide(0.5); got != orderflow.DecisionReject {
		t.Errorf("Review == Reject: Decide(0.5) = %s, want reject", got)
	}
}

func TestThresholdsValidate(t *testing.T) {
	for _, tc := range []struct {
		th risk.Thresholds
		ok bool
	}{
		{risk.Thresholds{Review: 0.3, Reject: 0.7}, true},
		{risk.Thresholds{Review: 0.5, Reject: 0.5}, true},
		{risk.Thresholds{Review: 0, Reject: 1}, true},
		{risk.Thresholds{Review: 0.7, Reject: 0.3}, false},
		{risk.Thresholds{Review: -0.1, Reject: 0.3}, false},
		{risk.Thresholds{Review: 0.1, Reject: 1.1}, false},
		{risk.Thresholds{Review: math.NaN(), Reject: 0.5}, false},
	} {
		if err := tc.th.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v.Validate() = %v, want ok=%v", tc.th, err, tc.ok)
		}
	}
	for _, s := range []risk.Scorer{risk.V21(), risk.V3()} {
		if err := risk.ThresholdsOf(s).Validate(); err != nil {
			t.Errorf("%s: %v", s.Version(), err)
		}
	}
}

func TestThresholdsForFPR(t *testing.T) {
	// Ten legitimate orders scored 0.0 … 0.9, one fraud at 0.95.
	var scores []float64
	var labels []bool
	for i := range 10 {
		scores = append(scores, float64(i)/10)
		labels = append(labels, false)
	}
	scores, labels = append(scores, 0.95), append(labels, true)
	th := risk.ThresholdsForFPR(scores, labels, 0.2, 0)
	flagged := func(cut float64) int {
		n := 0
		for i, s := range scores {
			if !labels[i] && s >= cut {
				n++
			}
		}
		return n
	}
	if got := flagged(th.Review); got != 2 {
		t.Errorf("Review %v flags %d legit orders, want 2 (20%%)", th.Review, got)
	}
	if got := flagged(th.Reject); got != 0 {
		t.Errorf("Reject %v rejects %d legit orders, want 0", th.Reject, got)
	}
	if th.Reject > 0.95 {
		t.Errorf("Reject %v above the fraud's score", th.Reject)
	}
}

func TestEvaluate(t *testing.T) {
	dec := func(version string, d orderflow.Decision, score float64, shadow string, shadowScore float64, fraud bool) orderflow.LabelledDecision {
		return orderflow.LabelledDecision{Fraud: fraud, RiskDecision: orderflow.RiskDecision{
			ModelVersion: version, Decision: d, Score: score, ShadowVersion: shadow, ShadowScore: shadowScore,
		}}
	}
	ds := []orderflow.LabelledDecision{
		dec("v2.1", orderflow.DecisionApprove, 0.1, "v3", 0.05, false),
		dec("v2.1", orderflow.DecisionReject, 0.8, "v3", 0.9, true),
		dec("v2.1", orderflow.DecisionApprove, 0.2, "v3", 0.95, true),
		dec("v3", orderflow.DecisionReview, 0.5, "v2.1", 0.3, false),
		dec("v3", orderflow.DecisionApprove, 0.01, "", 0, false),
	}
	v3 := risk.ScorerFunc(nil).Named("v3", risk.Thresholds{Review: 0.5, Reject: 0.9})
	got := risk.Evaluate(ds, v3)
	if len(got) != 4 {
		t.Fatalf("got %d entries, want 4: %+v", len(got), got)
	}
	want := []struct {
		version string
		role    risk.Role
		orders  int
		dec     risk.Outcomes
		acc     float64
		auc     float64
	}{
		// routed v2.1: legit approved ✓, fraud rejected ✓, fraud approved ✗.
		{"v2.1", risk.RoleRouted, 3, risk.Outcomes{Approve: 2, Reject: 1}, 2.0 / 3, 1},
		// shadow v2.1 (thresholds 0.45/0.70): 0.3 on legit → approve ✓; AUC undefined.
		{"v2.1", risk.RoleShadow, 1, risk.Outcomes{Approve: 1}, 1, -1},
		// routed v3: review on legit ✗, approve on legit ✓.
		{"v3", risk.RoleRouted, 2, risk.Outcomes{Approve: 1, Review: 1}, 0.5, -1},
		// shadow v3 (0.5/0.9): 0.05 approve ✓, 0.9 reject ✓, 0.95 reject ✓.
		{"v3", risk.RoleShadow, 3, risk.Outcomes{Approve: 1, Reject: 2}, 1, 1},
	}
	for i, w := range want {
		g := got[i]
		if g.Version != w.version || g.Role != w.role || g.Orders != w.orders || g.Decisions != w.dec {
			t.Errorf("entry %d = %+v, want %+v", i, g, w)
		}
		if g.Accuracy == nil || math.Abs(*g.Accuracy-w.acc) > 1e-12 {
			t.Errorf("entry %d (%s %s): accuracy %v, want %v", i, g.Version, g.Role, g.Accuracy, w.acc)
		}
		switch {
		case w.auc < 0 && g.AUC != nil:
			t.Errorf("entry %d (%s %s): AUC %v, want undefined", i, g.Version, g.Role, *g.AUC)
		case w.auc >= 0 && (g.AUC == nil || math.Abs(*g.AUC-w.auc) > 1e-12):
			t.Errorf("entry %d (%s %s): AUC %v, want %v", i, g.Version, g.Role, g.AUC, w.auc)
		}
		if g.OnFraud.Total()+g.OnLegit.Total() != g.Orders {
			t.Errorf("entry %d: confusion does not add up: %+v", i, g)
		}
	}
	if got := risk.Evaluate(nil); len(got) != 0 {
		t.Errorf("Evaluate(nil) = %+v, want empty", got)
	}
}
