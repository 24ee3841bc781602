package risk

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
)

// FeatureNames name the inputs of the logistic model, in the order of
// Vector. They are stored with the weights, and a model whose names differ
// from these is refused: weights are meaningless against other inputs.
var FeatureNames = []string{
	"log_amount", "log1p_orders_1h", "log1p_orders_24h", "log1p_devices_24h",
	"amount_z_pos", "first_order", "log1p_age_hours", "log1p_items",
	"night", "internal",
}

// NumFeatures is len(FeatureNames).
const NumFeatures = 10

// Vector returns the inputs of the logistic model for f. Counts enter as
// ln(1+n) because risk grows with each extra order less and less; the amount
// z-score enters only above the user's mean, clamped to 6, because a smaller
// order than usual is not a fraud signal and one absurd value must not
// dominate.
func (f *Features) Vector() [NumFeatures]float64 {
	return [NumFeatures]float64{
		f.LogAmount,
		math.Log1p(float64(f.Orders1h)),
		math.Log1p(float64(f.Orders24h)),
		math.Log1p(float64(f.Devices24h)),
		min(max(f.AmountZ, 0), 6),
		b2f(f.PriorOrders == 0),
		math.Log1p(f.AgeHours),
		math.Log1p(float64(f.Items)),
		b2f(f.Night),
		b2f(f.Internal),
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Logistic is a logistic-regression model over Vector:
//
//	score = 1 / (1 + exp(−(Bias + Σ Weights[i] · (x[i] − Mean[i]) / Scale[i])))
//
// Inputs are standardized with the training set's mean and scale, so the
// weights are comparable and the fit is well conditioned. Its JSON form is
// the checked-in file v3_weights.json.
type Logistic struct {
	Name       string     `json:"version"`
	Features   []string   `json:"features"`
	Mean       []float64  `json:"mean"`
	Scale      []float64  `json:"scale"`
	Weights    []float64  `json:"weights"`
	Bias       float64    `json:"bias"`
	Cutoffs    Thresholds `json:"thresholds"`
	TrainedBy  string     `json:"trained_by,omitempty"`
	TrainStats *FitStats  `json:"train_stats,omitempty"`

	// w and m are the weights divided by the scale and the bias with the
	// means folded in, so Score is one dot product.
	w [NumFeatures]float64
	b float64
}

var _ Thresholder = (*Logistic)(nil)

// Version returns the model's version name.
func (m *Logistic) Version() string { return m.Name }

// Thresholds returns the model's cut-offs, chosen when it was trained.
func (m *Logistic) Thresholds() Thresholds { return m.Cutoffs }

// Score returns the modelled probability that the order is fraud.
func (m *Logistic) Score(f Features) float64 {
	x := f.Vector()
	z := m.b
	for i, w := range m.w {
		z += w * x[i]
	}
	return 1 / (1 + math.Exp(-z))
}

// ParseLogistic decodes and checks a model in the JSON form of
// v3_weights.json.
func ParseLogistic(data []byte) (*Logistic, error) {
	var m Logistic
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("risk: decode logistic model: %w", err)
	}
	if err := m.init(); err != nil {
		return nil, err
	}
	return &m, nil
}

// init validates m and precomputes the folded weights.
func (m *Logistic) init() error {
	if m.Name == "" {
		return fmt.Errorf("risk: logistic model has no version")
	}
	if len(m.Features) != NumFeatures || len(m.Mean) != NumFeatures || len(m.Scale) != NumFeatures || len(m.Weights) != NumFeatures {
		return fmt.Errorf("risk: logistic model %s: want %d features, means, scales and weights", m.Name, NumFeatures)
	}
	for i, name := range FeatureNames {
		if m.Features[i] != name {
			return fmt.Errorf("risk: logistic model %s: feature %d is %q, want %q", m.Name, i, m.Features[i], name)
		}
		if !(m.Scale[i] > 0) || math.IsInf(m.Scale[i], 0) || isBad(m.Mean[i]) || isBad(m.Weights[i]) {
			return fmt.Errorf("risk: logistic model %s: feature %s has a bad mean, scale or weight", m.Name, name)
		}
	}
	if isBad(m.Bias) {
		return fmt.Errorf("risk: logistic model %s: bad bias", m.Name)
	}
	if err := m.Cutoffs.Validate(); err != nil {
		return fmt.Errorf("risk: logistic model %s: %w", m.Name, err)
	}
	m.b = m.Bias
	for i := range m.w {
		m.w[i] = m.Weights[i] / m.Scale[i]
		m.b -= m.w[i] * m.Mean[i]
	}
	if isBad(m.b) || slices.ContainsFunc(m.w[:], isBad) {
		return fmt.Errorf("risk: logistic model %s: weights overflow once scaled", m.Name)
	}
	return nil
}

func isBad(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) }

//go:embed v3_weights.json
var v3JSON []byte

var v3 = sync.OnceValue(func() *Logistic {
	m, err := ParseLogistic(v3JSON)
	if err != nil {
		panic(err) // the file is checked in and tested: this is a build defect
	}
	return m
})

// V3 returns model v3: logistic regression with the checked-in weights of
// v3_weights.json, produced by
//
//	go run ./risk/cmd/train -seed 1 -n 200000 > risk/v3_weights.json
//
// (the file records the exact command in trained_by). The same *Logistic is
// returned on every call; it must not be modified.
func V3() *Logistic { return v3() }
