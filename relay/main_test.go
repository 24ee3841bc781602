package relay_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/store/postgres"
	"github.com/orderflow/orderflow/store/postgres/pgtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openStore opens a postgres store on a schema of its own, dropped at
// cleanup. An unreachable PostgreSQL skips loudly, or fails when CI=true.
func openStore(tb testing.TB) *postgres.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, pgtest.FreshURL(tb))
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
