package local_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/lock/local"
	"github.com/orderflow/orderflow/lock/locktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// breakable gives the suite its hook into the lock table.
type breakable struct{ *local.Locker }

func (b breakable) BreakLock(_ context.Context, key string) error {
	b.Break(key)
	return nil
}

func TestLocker(t *testing.T) {
	locktest.Run(t, func(*testing.T) orderflow.Locker { return breakable{local.New()} })
}

// TestTokensOutrunClock: with a clock that stands still or steps back, tokens
// still increase, and a clock ahead of the counter takes over.
func TestTokensOutrunClock(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name  string
		clock []time.Time
	}{
		{"Frozen", []time.Time{base, base, base}},
		{"StepsBack", []time.Time{base, base.Add(-time.Hour), base.Add(-time.Second)}},
		{"Advances", []time.Time{base, base.Add(time.Nanosecond), base.Add(time.Hour)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := local.New()
			i := 0
			local.SetClock(l, func() time.Time { c := tc.clock[i]; i++; return c })
			var prev uint64
			for range tc.clock {
				le, err := l.Acquire(context.Background(), "k", time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if le.Token() <= prev {
					t.Errorf("token %d after %d", le.Token(), prev)
				}
				if le.Token() < uint64(base.UnixNano()) {
					t.Errorf("token %d is below the clock's first reading", le.Token())
				}
				prev = le.Token()
				_ = le.Release(context.Background())
			}
		})
	}
}
