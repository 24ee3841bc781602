package risk

import "math"

// V21Thresholds are v2.1's cut-offs: a new account with a large order
// (0.05 + 0.10 + 0.20) is still approved, one more signal sends it to
// review, and a burst of velocity together with churned devices or night
// time rejects.
var V21Thresholds = Thresholds{Review: 0.45, Reject: 0.70}

// V21 returns model v2.1: hand-written rules that add points per suspicious
// signal, clamped to [0, 1]. It is the champion the service starts with.
//
//	base                                   0.05
//	Orders1h ≥ 6 / ≥ 3                    +0.40 / +0.20
//	Orders24h ≥ 12                        +0.15
//	Devices24h ≥ 3 / = 2                  +0.30 / +0.05
//	amount over 5,000 major units         +0.20
//	AmountZ > 3 with ≥ 3 prior orders     +0.20
//	night time                            +0.15
//	account first seen under 24 h ago     +0.10
//	internal (employee) order             −0.30
func V21() Scorer { return v21{} }

type v21 struct{}

var largeAmount = math.Log1p(5000)

func (v21) Version() string        { return "v2.1" }
func (v21) Thresholds() Thresholds { return V21Thresholds }

func (v21) Score(f Features) float64 {
	s := 0.05
	switch {
	case f.Orders1h >= 6:
		s += 0.40
	case f.Orders1h >= 3:
		s += 0.20
	}
	if f.Orders24h >= 12 {
		s += 0.15
	}
	switch {
	case f.Devices24h >= 3:
		s += 0.30
	case f.Devices24h == 2:
		s += 0.05
	}
	if f.LogAmount > largeAmount {
		s += 0.20
	}
	if f.PriorOrders >= 3 && f.AmountZ > 3 {
		s += 0.20
	}
	if f.Night {
		s += 0.15
	}
	// A young account, not just a first order: a rule on the first order
	// alone would drop its points on the first retry and reward retrying.
	if f.PriorOrders == 0 || f.AgeHours < 24 {
		s += 0.10
	}
	if f.Internal {
		s -= 0.30
	}
	return min(max(s, 0), 1)
}
