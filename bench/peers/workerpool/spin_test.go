package workerpool_test

import "testing"

var sinkU uint64

// BenchmarkSpin checks the calibration: one op should take about taskCost.
func BenchmarkSpin(b *testing.B) {
	for range b.N {
		sinkU += spin(spinIters)
	}
}
