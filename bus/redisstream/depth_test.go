package redisstream

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

func TestDepth(t *testing.T) {
	b := New(nil, Config{DedupTTL: 24 * time.Hour}) // buckets of 6 h
	c := &consumer{b: b}
	w := b.bucketWidth()
	// now: 3 h into bucket cur.
	cur := int64(1000)
	now := time.Unix(0, cur*int64(w)).Add(3 * time.Hour)
	for _, tc := range []struct {
		name    string
		created time.Time
		want    int
	}{
		{"created now", now, 0},
		{"created clockSkew into the bucket", now.Add(-3*time.Hour + clockSkew), 0},
		{"created within clockSkew of the bucket's start", now.Add(-3*time.Hour + clockSkew/2), 1},
		{"in the previous bucket", now.Add(-4 * time.Hour), 1},
		{"three buckets back", now.Add(-3*time.Hour - 2*w - time.Hour), 3},
		{"older than every bucket", now.Add(-10 * w), doneBuckets},
		{"in the future (skewed clock)", now.Add(time.Hour), 0},
		{"unknown", time.Time{}, doneBuckets},
		{"before 1970", time.Unix(-5, 0), doneBuckets},
	} {
		e := &entry{ev: orderflow.Event{CreatedAt: tc.created}}
		if got := c.depth(e, cur); got != tc.want {
			t.Errorf("%s: depth %d, want %d", tc.name, got, tc.want)
		}
	}
}
