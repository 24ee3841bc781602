package breaker

import (
	"testing"
	"time"
)

func TestBucketOf(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{-time.Second, 0},
		{999 * time.Nanosecond, 0},
		{time.Microsecond, 1},
		{7 * time.Microsecond, 7},
		{8 * time.Microsecond, 8},
		{15 * time.Microsecond, 15},
		{16 * time.Microsecond, 16},
		{17 * time.Microsecond, 16},
		{18 * time.Microsecond, 17},
		{time.Hour, numBuckets - 1},
	}
	for _, tt := range tests {
		if got := bucketOf(tt.d); got != tt.want {
			t.Errorf("bucketOf(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

// Every value in range lands in a bucket whose bounds hold it, and the
// bucket is at most 12.5% of its lower bound wide.
func FuzzBucketOf(f *testing.F) {
	for _, seed := range []int64{0, 1, 999, 1000, 7999, 8000, 5e6, 2e8, 1 << 36, 1 << 40} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ns int64) {
		d := time.Duration(ns)
		i := bucketOf(d)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%v) = %d, out of [0,%d)", d, i, numBuckets)
		}
		lo, hi := bucketBounds(i)
		if d <= 0 || i == numBuckets-1 && d >= lo {
			return
		}
		// Truncation to whole microseconds is part of the contract.
		us := d.Truncate(time.Microsecond)
		if us < lo || us >= hi {
			t.Fatalf("bucketOf(%v) = %d with bounds [%v,%v)", d, i, lo, hi)
		}
		if lo >= 8*time.Microsecond && hi-lo > lo/8 {
			t.Fatalf("bucket %d [%v,%v) wider than 12.5%%", i, lo, hi)
		}
		if j := bucketOf(d + time.Microsecond); j < i {
			t.Fatalf("bucketOf not monotonic: %v→%d, +1µs→%d", d, i, j)
		}
	})
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		name string
		fill map[time.Duration]uint64
		q    float64
		want time.Duration
	}{
		{"empty", nil, 0.95, 0},
		{"single value", map[time.Duration]uint64{5 * time.Millisecond: 100}, 0.95, 5 * time.Millisecond},
		{"p95 below tail", map[time.Duration]uint64{5 * time.Millisecond: 95, 200 * time.Millisecond: 5}, 0.95, 5 * time.Millisecond},
		{"p95 in tail", map[time.Duration]uint64{5 * time.Millisecond: 94, 200 * time.Millisecond: 6}, 0.95, 200 * time.Millisecond},
		{"p50", map[time.Duration]uint64{time.Millisecond: 50, time.Second: 50}, 0.5, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c counts
			for d, n := range tt.fill {
				c.hist[bucketOf(d)] += n
				c.total += n
			}
			got := c.quantile(tt.q)
			if diff := got - tt.want; diff < -tt.want/8 || diff > tt.want/8 {
				t.Errorf("quantile(%v) = %v, want %v ±12.5%%", tt.q, got, tt.want)
			}
		})
	}
}
