package risk_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/orderflow/orderflow/risk"
)

// TestFitLogisticRecoversModel draws labels from a known logistic model
// over two inputs and checks the fit finds its probabilities again.
func TestFitLogisticRecoversModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	truth := func(f risk.Features) float64 {
		return 1 / (1 + math.Exp(-(-4 + 1.5*f.LogAmount - 2 + 3*b2f(f.Night))))
	}
	var samples []risk.Sample
	for range 40_000 {
		f := risk.Features{LogAmount: 1 + 2*rng.Float64(), Night: rng.IntN(4) == 0, Orders1h: 1, Orders24h: 1}
		samples = append(samples, risk.Sample{Features: f, Fraud: rng.Float64() < truth(f)})
	}
	m, err := risk.FitLogistic(samples, risk.FitConfig{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Version() != "test" || m.TrainStats == nil || m.TrainStats.Samples != len(samples) {
		t.Fatalf("model %s, stats %+v", m.Version(), m.TrainStats)
	}
	for _, f := range []risk.Features{
		{LogAmount: 1.2, Orders1h: 1, Orders24h: 1},
		{LogAmount: 2.8, Orders1h: 1, Orders24h: 1},
		{LogAmount: 2, Night: true, Orders1h: 1, Orders24h: 1},
	} {
		if got, want := m.Score(f), truth(f); math.Abs(got-want) > 0.03 {
			t.Errorf("score %+v = %.3f, want %.3f ± 0.03", f, got, want)
		}
	}
	again, err := risk.FitLogistic(samples, risk.FitConfig{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Weights {
		if m.Weights[i] != again.Weights[i] {
			t.Fatal("two fits of one sample differ")
		}
	}
}

func TestFitLogisticErrors(t *testing.T) {
	one := []risk.Sample{{Fraud: true}, {Fraud: true}}
	for name, samples := range map[string][]risk.Sample{"NoSamples": nil, "OneClass": one} {
		if _, err := risk.FitLogistic(samples, risk.FitConfig{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
