package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/store/postgres"
	"github.com/orderflow/orderflow/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// baseURL is the database the tests make their schemas in:
// $ORDERFLOW_TEST_POSTGRES, or the local test database.
func baseURL() string {
	if u := os.Getenv("ORDERFLOW_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// unreachable ends a test whose PostgreSQL is not there: a loud skip on a
// laptop, a failure when CI=true, where every service must run.
func unreachable(tb testing.TB, err error) {
	tb.Helper()
	msg := fmt.Sprintf("PostgreSQL at %s is unreachable (%v): start it with scripts/services.sh", baseURL(), err)
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip("SKIPPED, NOT TESTED: " + msg)
}

// FreshURL creates an empty schema, dropped when tb ends, and returns a URL
// whose connections use it (search_path), so every test starts from an
// empty database without the cost of CREATE DATABASE. settings are more
// "-c name=value" session settings for those connections.
func FreshURL(tb testing.TB, settings ...string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, baseURL())
	if err != nil {
		unreachable(tb, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "orderflow_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, baseURL())
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(baseURL())
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("options", strings.Join(append([]string{"-c search_path=" + schema}, settings...), " "))
	// pgx decodes %20, not '+', as a space in a parameter.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String()
}

// MustOpen opens a store on a fresh schema, closed at cleanup (before the
// schema is dropped: cleanups run last in, first out).
func MustOpen(tb testing.TB) *postgres.Store {
	tb.Helper()
	return mustOpenURL(tb, FreshURL(tb))
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
		return mustOpenURL(t, FreshURL(t, "-c default_transaction_isolation=serializable"))
	})
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
