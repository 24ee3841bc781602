package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// histogram records durations in fixed memory with a relative error under
// 1 %: a log-linear layout in the style of HdrHistogram. Values below 256 µs
// have their own bucket; above, each power of two is split into 128 buckets.
// A run of hours at thousands of orders a second costs the same 35 KiB as a
// run of seconds, which a sorted sample could not promise.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // buckets per power of two
	histLinear  = 2 * histSub      // values below this many µs are exact
	histShifts  = 40               // up to 2^47 µs, about four years
	histBuckets = histLinear + histShifts*histSub
)

// record adds one duration; negative ones count as zero because clocks of
// two machines may disagree by a little.
func (h *histogram) record(d time.Duration) {
	h.counts[histIndex(d)]++
	h.n++
	h.max = max(h.max, d)
}

func histIndex(d time.Duration) int {
	v := uint64(max(d, 0) / time.Microsecond)
	if v < histLinear {
		return int(v)
	}
	shift := bits.Len64(v) - (histSubBits + 1)
	i := histLinear + (shift-1)*histSub + int(v>>shift) - histSub
	return min(i, histBuckets-1)
}

// histValue returns the middle of bucket i, the estimate a quantile reports.
func histValue(i int) time.Duration {
	if i < histLinear {
		return time.Duration(i) * time.Microsecond
	}
	shift := (i-histLinear)/histSub + 1
	m := uint64((i-histLinear)%histSub + histSub)
	lo := m << shift
	return time.Duration(lo+(uint64(1)<<shift)/2) * time.Microsecond
}

// quantile returns the duration at or below which a fraction q of the
// recorded values lie, or 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(histValue(i), h.max)
		}
	}
	return h.max
}

// scoreBins is how finely scores are binned for the AUC. Pairs that share a
// bin count half, as ties do; with 16384 bins the AUC moves by less than the
// fraction of pairs closer than 6e-5 in score.
const scoreBins = 1 << 14

// modelStats measures one model version client-side from the scores it
// gave and the hidden truth the generator drew, in fixed memory.
type modelStats struct {
	decided int64
	fraud   int64
	correct int64
	// bins[1] counts fraud orders by score bin, bins[0] legitimate ones.
	bins [2][]uint32
}

func newModelStats() *modelStats {
	return &modelStats{bins: [2][]uint32{make([]uint32, scoreBins), make([]uint32, scoreBins)}}
}

// add counts one decided order. A decision is correct when it approves a
// legitimate order or does not approve (reviews or rejects) a fraudulent
// one: the same rule as risk.Evaluate, so the two numbers are comparable.
func (m *modelStats) add(score float64, approved, fraud bool) {
	m.decided++
	f := 0
	if fraud {
		f = 1
		m.fraud++
	}
	if approved != fraud {
		m.correct++
	}
	if math.IsNaN(score) {
		score = 0
	}
	b := int(score * scoreBins)
	m.bins[f][min(max(b, 0), scoreBins-1)]++
}

// accuracy is nil when nothing was decided.
func (m *modelStats) accuracy() *float64 {
	if m.decided == 0 {
		return nil
	}
	a := float64(m.correct) / float64(m.decided)
	return &a
}

// auc is the probability that a random fraud order scores above a random
// legitimate one (ties half), the Mann-Whitney statistic over the bins; nil
// when either class is empty, because then it is undefined.
func (m *modelStats) auc() *float64 {
	pos, neg := m.fraud, m.decided-m.fraud
	if pos == 0 || neg == 0 {
		return nil
	}
	var below, wins float64 // legitimate orders in lower bins; fraud-over-legit pairs
	for i := range scoreBins {
		p, n := float64(m.bins[1][i]), float64(m.bins[0][i])
		wins += p * (below + n/2)
		below += n
	}
	a := wins / (float64(pos) * float64(neg))
	return &a
}
