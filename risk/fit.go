package risk

import (
	"errors"
	"fmt"
	"math"
)

// Sample is one labelled order for training.
type Sample struct {
	Features Features
	Fraud    bool
}

// FitConfig configures FitLogistic. The zero value works.
type FitConfig struct {
	// Version names the fitted model. "" means "v3".
	Version string
	// L2 is the ridge penalty on the standardized weights (not the bias).
	// 0 means 1.0: a light penalty that matters only for inputs the data
	// barely moves (a constant column would otherwise make the fit singular).
	L2 float64
	// MaxIter bounds the Newton steps. 0 means 50; IRLS usually converges in
	// under 10.
	MaxIter int
}

// FitStats describe a fit, stored with the model.
type FitStats struct {
	Samples    int     `json:"samples"`
	Fraud      int     `json:"fraud"`
	Iterations int     `json:"iterations"`
	LogLoss    float64 `json:"log_loss"`
}

// FitLogistic fits a logistic regression to samples by iteratively
// reweighted least squares (Newton's method on the penalized log-likelihood),
// in plain Go: standardize each input, then repeat solving
// (XᵀWX + λI) Δ = Xᵀ(y − p) − λw and stepping by Δ, halved until the
// penalized loss does not grow, until the step is negligible. The result is
// deterministic: the same samples in the same order give the same bits. The
// returned model has DefaultThresholds; the caller picks its own (see
// ThresholdsForFPR).
func FitLogistic(samples []Sample, cfg FitConfig) (*Logistic, error) {
	if cfg.Version == "" {
		cfg.Version = "v3"
	}
	if cfg.L2 == 0 {
		cfg.L2 = 1
	}
	if cfg.MaxIter == 0 {
		cfg.MaxIter = 50
	}
	n := len(samples)
	if n == 0 {
		return nil, errors.New("risk: fit: no samples")
	}
	xs := make([][NumFeatures]float64, n)
	ys := make([]float64, n)
	var mean, sq [NumFeatures]float64
	fraud := 0
	for i := range samples {
		xs[i] = samples[i].Features.Vector()
		if samples[i].Fraud {
			ys[i] = 1
			fraud++
		}
		for j, v := range xs[i] {
			mean[j] += v
			sq[j] += v * v
		}
	}
	if fraud == 0 || fraud == n {
		return nil, errors.New("risk: fit: samples need both fraud and legitimate orders")
	}
	var scale [NumFeatures]float64
	for j := range mean {
		mean[j] /= float64(n)
		scale[j] = math.Sqrt(max(sq[j]/float64(n)-mean[j]*mean[j], 0))
		if scale[j] < 1e-9 {
			scale[j] = 1 // a constant input: its weight is held at 0 by L2
		}
	}
	for i := range xs {
		for j := range xs[i] {
			xs[i][j] = (xs[i][j] - mean[j]) / scale[j]
		}
	}

	const d = dim
	var w [d]float64
	w[NumFeatures] = math.Log(float64(fraud) / float64(n-fraud))
	obj := penalizedLoss(xs, ys, &w, cfg.L2)
	iter := 0
	for iter < cfg.MaxIter {
		iter++
		var h [d][d]float64
		var g [d]float64
		for i := range xs {
			p := sigmoid(dot(&w, &xs[i]))
			r, wt := ys[i]-p, max(p*(1-p), 1e-12)
			var row [d]float64
			copy(row[:], xs[i][:])
			row[NumFeatures] = 1
			for a := range d {
				g[a] += row[a] * r
				for b := 0; b <= a; b++ {
					h[a][b] += wt * row[a] * row[b]
				}
			}
		}
		for a := range NumFeatures {
			h[a][a] += cfg.L2
			g[a] -= cfg.L2 * w[a]
		}
		step, err := solveSPD(h, g)
		if err != nil {
			return nil, fmt.Errorf("risk: fit: iteration %d: %w", iter, err)
		}
		// Damped Newton: halve the step until the penalized loss does not
		// grow. A full step can overshoot badly where some orders are
		// nearly separable and p(1−p) is tiny.
		t, improved := 1.0, false
		for range 40 {
			var next [d]float64
			for a := range d {
				next[a] = w[a] + t*step[a]
			}
			if o := penalizedLoss(xs, ys, &next, cfg.L2); o <= obj {
				w, obj, improved = next, o, true
				break
			}
			t /= 2
		}
		big := 0.0
		for a := range d {
			big = max(big, math.Abs(t*step[a]))
		}
		if !improved || big < 1e-8 {
			break
		}
	}
	loss := (obj - penalty(&w, cfg.L2)) / float64(n)
	m := &Logistic{
		Name:     cfg.Version,
		Features: append([]string(nil), FeatureNames...),
		Mean:     mean[:],
		Scale:    scale[:],
		Weights:  append([]float64(nil), w[:NumFeatures]...),
		Bias:     w[NumFeatures],
		Cutoffs:  DefaultThresholds,
		TrainStats: &FitStats{
			Samples: n, Fraud: fraud, Iterations: iter, LogLoss: loss,
		},
	}
	if err := m.init(); err != nil {
		return nil, err
	}
	return m, nil
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// dot returns the linear predictor: bias plus weights · x.
func dot(w *[dim]float64, x *[NumFeatures]float64) float64 {
	z := w[NumFeatures]
	for j, v := range x {
		z += w[j] * v
	}
	return z
}

// penalizedLoss is the negative log-likelihood plus the ridge penalty.
func penalizedLoss(xs [][NumFeatures]float64, ys []float64, w *[dim]float64, l2 float64) float64 {
	loss := 0.0
	for i := range xs {
		z := dot(w, &xs[i])
		// log(1+e^z) − y·z, computed without overflow.
		loss += math.Max(z, 0) + math.Log1p(math.Exp(-math.Abs(z))) - ys[i]*z
	}
	return loss + penalty(w, l2)
}

func penalty(w *[dim]float64, l2 float64) float64 {
	s := 0.0
	for j := range NumFeatures {
		s += w[j] * w[j]
	}
	return l2 / 2 * s
}

// dim is the number of fitted parameters: the weights, then the bias.
const dim = NumFeatures + 1

// solveSPD solves h x = g for a symmetric positive definite h given by its
// lower triangle, by Cholesky decomposition.
func solveSPD(h [dim][dim]float64, g [dim]float64) ([dim]float64, error) {
	var l [dim][dim]float64
	for i := range dim {
		for j := 0; j <= i; j++ {
			s := h[i][j]
			for k := range j {
				s -= l[i][k] * l[j][k]
			}
			if i == j {
				if !(s > 0) {
					return [dim]float64{}, errors.New("matrix not positive definite")
				}
				l[i][i] = math.Sqrt(s)
			} else {
				l[i][j] = s / l[j][j]
			}
		}
	}
	var y, x [dim]float64
	for i := range dim {
		s := g[i]
		for k := range i {
			s -= l[i][k] * y[k]
		}
		y[i] = s / l[i][i]
	}
	for i := dim - 1; i >= 0; i-- {
		s := y[i]
		for k := i + 1; k < dim; k++ {
			s -= l[k][i] * x[k]
		}
		x[i] = s / l[i][i]
	}
	return x, nil
}
