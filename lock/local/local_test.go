package local_test

import (
	"context"
	"testing"

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
