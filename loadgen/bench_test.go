package loadgen

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// benchLatencies is a spread like a loaded server's: lognormal around 50 ms.
func benchLatencies(n int) []time.Duration {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(50e6 * (1 + rng.ExpFloat64()))
	}
	return out
}

var sink int

// BenchmarkLatencyRecord compares recording one latency in the fixed
// histogram with appending it to a sample kept for sorting, the simple
// alternative whose memory grows with the run.
func BenchmarkLatencyRecord(b *testing.B) {
	vals := benchLatencies(1 << 16)
	b.Run("histogram", func(b *testing.B) {
		var h histogram
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			h.record(vals[i&(len(vals)-1)])
		}
	})
	b.Run("sample", func(b *testing.B) {
		var s []time.Duration
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			s = append(s, vals[i&(len(vals)-1)])
		}
		sink = len(s)
	})
}

// BenchmarkLatencyQuantiles is the cost of the summary's three quantiles
// over a million recorded latencies (an hour at ~300 orders/s).
func BenchmarkLatencyQuantiles(b *testing.B) {
	vals := benchLatencies(1 << 20)
	b.Run("histogram", func(b *testing.B) {
		var h histogram
		for _, v := range vals {
			h.record(v)
		}
		for b.Loop() {
			_, _, _ = h.quantile(0.5), h.quantile(0.95), h.quantile(0.99)
		}
	})
	b.Run("sample", func(b *testing.B) {
		s := make([]time.Duration, len(vals))
		for b.Loop() {
			copy(s, vals)
			slices.Sort(s)
			n := len(s)
			_, _, _ = s[n/2], s[n*95/100], s[n*99/100]
		}
	})
}

// BenchmarkNextRequest is the pacer's own work per order: the next order of
// the synthetic stream and its request body. It bounds the rate one pacer
// goroutine can offer, before any HTTP.
func BenchmarkNextRequest(b *testing.B) {
	r := newRunner(Config{Seed: 1, UserPrefix: "u"})
	b.ReportAllocs()
	for b.Loop() {
		o, _ := r.next()
		req := o.NewOrder()
		if _, err := json.Marshal(&req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkModelStatsAdd is the per-decision cost of the client-side AUC
// and accuracy bookkeeping.
func BenchmarkModelStatsAdd(b *testing.B) {
	m := newModelStats()
	rng := rand.New(rand.NewPCG(1, 2))
	scores := make([]float64, 1<<12)
	for i := range scores {
		scores[i] = rng.Float64()
	}
	for i := 0; b.Loop(); i++ {
		s := scores[i&(len(scores)-1)]
		m.add(s, s < 0.5, i%25 == 0)
	}
}
