package postgres_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/store/postgres"
	"github.com/orderflow/orderflow/store/postgres/pgtest"
	"github.com/orderflow/orderflow/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// MustOpen opens a store on a fresh schema, closed at cleanup (before the
// schema is dropped: cleanups run last in, first out).
func MustOpen(tb testing.TB) *postgres.Store {
	tb.Helper()
	return mustOpenURL(tb, pgtest.FreshURL(tb))
}

func mustOpenURL(tb testing.TB, u string) *postgres.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, u)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) orderflow.OrderStore { return MustOpen(t) })
}

// TestContractSerializable runs the contract with every transaction
// SERIALIZABLE, as CockroachDB runs them: concurrent writers of one row then
// fail with serialization errors (40001) instead of waiting, and the store's
// bounded retry must turn those into the same results.
func TestContractSerializable(t *testing.T) {
	if testing.Short() {
		t.Skip("the contract runs once more under SERIALIZABLE; skipped with -short")
	}
	storetest.Run(t, func(t *testing.T) orderflow.OrderStore {
		return mustOpenURL(t, pgtest.FreshURL(t, "-c default_transaction_isolation=serializable"))
	})
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
