package breaker

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// The latency histogram is log-linear, HDR style: values are microseconds;
// below 8 µs every microsecond has its own bucket; above, each power of two
// is split into 8 equal sub-buckets, so any value is known within 12.5%.
// 200 buckets cover 0 to 2^27 µs (~134 s); larger values land in the last.
// Fixed buckets make histograms mergeable by adding counters, which is what
// lets the window be a ring of per-second histograms updated with atomic
// adds and merged only when a decision is taken — no sample is ever sorted.
const (
	subBits    = 3
	subCount   = 1 << subBits
	maxExp     = 26
	numBuckets = (maxExp - subBits + 2) * subCount
)

// bucketOf returns the histogram bucket of a latency.
func bucketOf(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	v := uint64(d) / uint64(time.Microsecond)
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - 1
	if e > maxExp {
		return numBuckets - 1
	}
	sub := int(v>>(e-subBits)) & (subCount - 1)
	return (e-subBits+1)*subCount + sub
}

// bucketBounds returns the [lower, upper) range of bucket i.
func bucketBounds(i int) (lower, upper time.Duration) {
	if i < subCount {
		return time.Duration(i) * time.Microsecond, time.Duration(i+1) * time.Microsecond
	}
	g, sub := i/subCount, i%subCount
	e := g + subBits - 1
	lo := uint64(subCount+sub) << (e - subBits)
	w := uint64(1) << (e - subBits)
	return time.Duration(lo) * time.Microsecond, time.Duration(lo+w) * time.Microsecond
}

// counts is a plain (non-atomic) tally: the merge of several slots.
type counts struct {
	total, fail uint64
	hist        [numBuckets]uint64
}

func (c *counts) reset() { *c = counts{} }

// add adds a live slot into c with atomic loads.
func (c *counts) add(s *slot) {
	c.fail += s.fail.Load()
	for i := range s.hist {
		h := s.hist[i].Load()
		c.hist[i] += h
		c.total += h
	}
}

// quantile returns the q-quantile (0<q≤1) as the midpoint of the bucket that
// holds it, or 0 for an empty tally.
func (c *counts) quantile(q float64) time.Duration {
	n := c.total
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.999999)
	if rank < 1 {
		rank = 1
	}
	var cum uint64
	for i, h := range c.hist {
		cum += h
		if cum >= rank {
			lo, hi := bucketBounds(i)
			return lo + (hi-lo)/2
		}
	}
	lo, hi := bucketBounds(numBuckets - 1)
	return lo + (hi-lo)/2
}

// slot is one bucket of the rolling window: the calls that finished during
// one bucket period. The hot path touches only its atomic counters. There is
// no total counter: the histogram's sum is the volume, and one atomic add per
// call is cheaper than two.
type slot struct {
	end   atomic.Int64 // end of the period, in breaker nanos; read lock-free
	epoch int64        // period number; guarded by Breaker.mu
	fail  atomic.Uint64
	hist  [numBuckets]atomic.Uint64
}

func (s *slot) reset(epoch, end int64) {
	s.fail.Store(0)
	for i := range s.hist {
		s.hist[i].Store(0)
	}
	s.epoch = epoch
	s.end.Store(end)
}
