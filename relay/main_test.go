package relay_test

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

	"github.com/orderflow/orderflow/store/postgres"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func baseURL() string {
	if u := os.Getenv("ORDERFLOW_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// openStore opens a postgres store on a schema of its own, dropped at
// cleanup. An unreachable PostgreSQL skips loudly, or fails when CI=true.
func openStore(tb testing.TB) *postgres.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, baseURL())
	if err != nil {
		msg := fmt.Sprintf("PostgreSQL at %s is unreachable (%v): start it with scripts/services.sh", baseURL(), err)
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip("SKIPPED, NOT TESTED: " + msg)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "relay_test_" + hex.EncodeToString(b)
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
	q.Set("options", "-c search_path="+schema)
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	s, err := postgres.Open(ctx, u.String())
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
