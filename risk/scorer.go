package risk

import (
	"fmt"
	"math"

	"github.com/orderflow/orderflow"
)

// Scorer is one version of the risk model. Score returns the probability-like
// risk of an order in [0, 1] (higher is riskier); Version names the model in
// every decision it makes (RiskDecision.ModelVersion), so a verdict can be
// traced to the exact model. Score must be safe for concurrent use and should
// not allocate: it runs on every order, for both versions.
type Scorer interface {
	Score(f Features) float64
	Version() string
}

// Thresholder is the optional capability of a Scorer that knows where its
// scores turn into review and reject. Scores of different versions are not on
// one scale (rules add points, a logistic model gives a probability), so the
// cut-offs belong to the version. Scorers without it get DefaultThresholds.
type Thresholder interface {
	Thresholds() Thresholds
}

// Thresholds map a score to a decision: approve below Review, review from
// Review up to (not including) Reject, reject from Reject up. Valid thresholds
// satisfy 0 <= Review <= Reject <= 1; Review == Reject means the version never
// asks for a manual review.
type Thresholds struct {
	Review float64 `json:"review"`
	Reject float64 `json:"reject"`
}

// DefaultThresholds are used for a Scorer that does not implement Thresholder.
var DefaultThresholds = Thresholds{Review: 0.5, Reject: 0.8}

// Validate reports whether t is ordered and within [0, 1].
func (t Thresholds) Validate() error {
	if !(0 <= t.Review && t.Review <= t.Reject && t.Reject <= 1) {
		return fmt.Errorf("risk: thresholds must satisfy 0 <= review (%v) <= reject (%v) <= 1", t.Review, t.Reject)
	}
	return nil
}

// Decide maps a score to a decision. A NaN score rejects: a model that cannot
// score an order must not approve it.
func (t Thresholds) Decide(score float64) orderflow.Decision {
	switch {
	case math.IsNaN(score) || score >= t.Reject:
		return orderflow.DecisionReject
	case score >= t.Review:
		return orderflow.DecisionReview
	default:
		return orderflow.DecisionApprove
	}
}

// ThresholdsOf returns s's thresholds, or DefaultThresholds when s does not
// implement Thresholder.
func ThresholdsOf(s Scorer) Thresholds {
	if th, ok := s.(Thresholder); ok {
		return th.Thresholds()
	}
	return DefaultThresholds
}

// ScorerFunc adapts a plain function to Scorer, the way http.HandlerFunc
// adapts one to Handler; Named gives it the version name and thresholds a
// Scorer needs.
type ScorerFunc func(f Features) float64

// Named returns a Scorer (and Thresholder) that scores with fn under the
// given version name and thresholds.
func (fn ScorerFunc) Named(version string, th Thresholds) Scorer {
	return namedFunc{fn: fn, version: version, th: th}
}

type namedFunc struct {
	fn      ScorerFunc
	version string
	th      Thresholds
}

func (n namedFunc) Score(f Features) float64 { return n.fn(f) }
func (n namedFunc) Version() string          { return n.version }
func (n namedFunc) Thresholds() Thresholds   { return n.th }

var (
	_ Scorer      = namedFunc{}
	_ Thresholder = namedFunc{}
)

// Models returns the built-in model versions, the first champion first:
// v2.1, then v3. A command maps a flag or an API's "challenger" field to a
// Scorer with ModelByVersion.
func Models() []Scorer { return []Scorer{V21(), V3()} }

// ModelByVersion returns the built-in model of that version name.
func ModelByVersion(version string) (Scorer, bool) {
	for _, m := range Models() {
		if m.Version() == version {
			return m, true
		}
	}
	return nil, false
}
