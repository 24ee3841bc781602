package risk

import (
	"cmp"
	"math"
	"slices"
	"sort"

	"github.com/orderflow/orderflow"
)

// Role says how a version saw an order: routed (its verdict was sent) or
// shadow (scored alongside, for comparison only).
type Role string

const (
	RoleRouted Role = "routed"
	RoleShadow Role = "shadow"
)

// Outcomes count decisions.
type Outcomes struct {
	Approve int `json:"approve"`
	Review  int `json:"review"`
	Reject  int `json:"reject"`
}

// Total is Approve + Review + Reject.
func (o Outcomes) Total() int { return o.Approve + o.Review + o.Reject }

func (o *Outcomes) add(d orderflow.Decision) {
	switch d {
	case orderflow.DecisionApprove:
		o.Approve++
	case orderflow.DecisionReview:
		o.Review++
	default:
		o.Reject++
	}
}

// VersionMetrics measure one model version in one role over labelled
// orders. A decision is counted as correct when it approves a legitimate
// order or does not approve (reviews or rejects) a fraudulent one: review is
// the model asking a human, which is right for fraud and a cost for a good
// customer. Accuracy and AUC are nil when undefined (no orders; for AUC,
// no fraud or no legitimate order), so the JSON says null rather than a
// made-up number.
type VersionMetrics struct {
	Version string `json:"version"`
	Role    Role   `json:"role"`
	Orders  int    `json:"orders"`
	// Decisions counts decisions by outcome; OnFraud and OnLegit split them
	// by the label (a confusion matrix at the version's thresholds).
	Decisions Outcomes `json:"decisions"`
	OnFraud   Outcomes `json:"on_fraud"`
	OnLegit   Outcomes `json:"on_legit"`
	Accuracy  *float64 `json:"accuracy"`
	AUC       *float64 `json:"auc"`
}

// Evaluate measures every model version over labelled decisions, in both
// roles: the routed version from Decision and Score, the shadow version from
// ShadowScore (a decision without a ShadowVersion has no shadow). A shadow
// decision is derived with the thresholds of the matching model among
// models, else of the built-in version of that name (v2.1, v3), else
// DefaultThresholds. The result is sorted by version, routed before shadow.
func Evaluate(ds []orderflow.LabelledDecision, models ...Scorer) []VersionMetrics {
	type key struct {
		version string
		role    Role
	}
	type acc struct {
		m      VersionMetrics
		scores []float64
		labels []bool
	}
	accs := map[key]*acc{}
	get := func(v string, r Role) *acc {
		a := accs[key{v, r}]
		if a == nil {
			a = &acc{m: VersionMetrics{Version: v, Role: r}}
			accs[key{v, r}] = a
		}
		return a
	}
	record := func(a *acc, d orderflow.Decision, score float64, fraud bool) {
		a.m.Orders++
		a.m.Decisions.add(d)
		if fraud {
			a.m.OnFraud.add(d)
		} else {
			a.m.OnLegit.add(d)
		}
		a.scores = append(a.scores, score)
		a.labels = append(a.labels, fraud)
	}
	for i := range ds {
		d := &ds[i]
		record(get(d.ModelVersion, RoleRouted), d.Decision, d.Score, d.Fraud)
		if d.ShadowVersion != "" {
			th := thresholdsFor(d.ShadowVersion, models)
			record(get(d.ShadowVersion, RoleShadow), th.Decide(d.ShadowScore), d.ShadowScore, d.Fraud)
		}
	}
	out := make([]VersionMetrics, 0, len(accs))
	for _, a := range accs {
		m := a.m
		if m.Orders > 0 {
			acc := float64(m.OnLegit.Approve+m.OnFraud.Review+m.OnFraud.Reject) / float64(m.Orders)
			m.Accuracy = &acc
		}
		if auc, ok := AUC(a.scores, a.labels); ok {
			m.AUC = &auc
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b VersionMetrics) int {
		return cmp.Or(cmp.Compare(a.Version, b.Version), cmp.Compare(a.Role, b.Role))
	})
	return out
}

func thresholdsFor(version string, models []Scorer) Thresholds {
	for _, s := range models {
		if s != nil && s.Version() == version {
			return ThresholdsOf(s)
		}
	}
	if m, ok := ModelByVersion(version); ok {
		return ThresholdsOf(m)
	}
	return DefaultThresholds
}

// AUC returns the area under the ROC curve of scores against labels (true =
// positive, fraud): the probability that a random positive scores higher than
// a random negative, ties counting one half. It is computed exactly by the
// Mann–Whitney rank statistic with mid-ranks for ties,
//
//	AUC = (R₊ − P(P+1)/2) / (P·N)
//
// where R₊ is the sum of the positives' ranks, in O(n log n). ok is false
// when there is no positive or no negative, or the lengths differ. NaN
// scores sort below every other score.
func AUC(scores []float64, labels []bool) (auc float64, ok bool) {
	n := len(scores)
	if n != len(labels) {
		return 0, false
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	key := func(i int) float64 {
		if math.IsNaN(scores[i]) {
			return math.Inf(-1)
		}
		return scores[i]
	}
	sort.Slice(idx, func(a, b int) bool { return key(idx[a]) < key(idx[b]) })
	var rankSum float64
	pos := 0
	for i := 0; i < n; {
		j := i
		for j < n && key(idx[j]) == key(idx[i]) {
			j++
		}
		mid := float64(i+1+j) / 2 // mean of ranks i+1 … j
		for k := i; k < j; k++ {
			if labels[idx[k]] {
				rankSum += mid
				pos++
			}
		}
		i = j
	}
	neg := n - pos
	if pos == 0 || neg == 0 {
		return 0, false
	}
	p := float64(pos)
	return (rankSum - p*(p+1)/2) / (p * float64(neg)), true
}

// ThresholdsForFPR picks cut-offs from scores of labelled orders by the
// share of legitimate orders each may stop: Review is the lowest score at
// which at most reviewFPR of the legitimate orders would be reviewed or
// rejected, Reject the lowest at which at most rejectFPR would be rejected.
// It is how risk/cmd/train sets v3's thresholds: a business states how many
// good customers it is willing to bother, the model says where that is.
func ThresholdsForFPR(scores []float64, labels []bool, reviewFPR, rejectFPR float64) Thresholds {
	var legit []float64
	for i, s := range scores {
		if !labels[i] {
			legit = append(legit, s)
		}
	}
	slices.Sort(legit)
	cut := func(fpr float64) float64 {
		if len(legit) == 0 {
			return 1
		}
		// Flagging scores >= t stops the legit scores >= t; allow at most k.
		k := int(fpr * float64(len(legit)))
		if k >= len(legit) {
			return 0
		}
		t := legit[len(legit)-1-k]
		return math.Nextafter(t, 2) // strictly above the (k+1)-th highest
	}
	th := Thresholds{Review: min(cut(reviewFPR), 1), Reject: min(cut(rejectFPR), 1)}
	th.Reject = max(th.Reject, th.Review)
	return th
}
