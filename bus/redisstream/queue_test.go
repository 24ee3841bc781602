package redisstream

import (
	"math/rand/v2"
	"testing"
)

// TestOrderQueue drives an orderQueue with random pushes and pops against
// a plain slice: same entries, same order, and the array reused or
// compacted, never grown by what was popped.
func TestOrderQueue(t *testing.T) {
	for _, pushBias := range []float64{0.3, 0.5, 0.7} {
		rng := rand.New(rand.NewPCG(1, uint64(pushBias*100)))
		var q orderQueue
		var want []*entry
		for i := range 20000 {
			if len(want) == 0 || rng.Float64() < pushBias {
				e := &entry{attempt: i}
				if wasIdle := q.push(e); wasIdle != (len(want) == 0) {
					t.Fatalf("bias %v op %d: push reported idle %v with %d queued", pushBias, i, wasIdle, len(want))
				}
				want = append(want, e)
				continue
			}
			if q.head() != want[0] {
				t.Fatalf("bias %v op %d: head is not the oldest entry", pushBias, i)
			}
			got, more := q.pop()
			if got != want[0] || more != (len(want) > 1) {
				t.Fatalf("bias %v op %d: pop = %v, %v; want the oldest entry, %v", pushBias, i, got.attempt, more, len(want) > 1)
			}
			want = want[1:]
			if live := len(q.entries) - q.first; live != len(want) {
				t.Fatalf("bias %v op %d: %d entries queued, want %d", pushBias, i, live, len(want))
			}
			if len(q.entries) > 2*len(want)+64 {
				t.Fatalf("bias %v op %d: %d slots for %d queued entries: the popped prefix is kept", pushBias, i, len(q.entries), len(want))
			}
		}
	}
}
