// Package pgtest gives tests an empty PostgreSQL schema of their own, so
// every package that tests against the real server (the store, the relay)
// starts from a clean database without the cost of CREATE DATABASE.
package pgtest

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
)

// BaseURL is the database the tests make their schemas in:
// $ORDERFLOW_TEST_POSTGRES, or the local test database.
func BaseURL() string {
	if u := os.Getenv("ORDERFLOW_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// Unreachable ends a test whose PostgreSQL is not there: a loud skip on a
// laptop, a failure when CI=true, where every service must run.
func Unreachable(tb testing.TB, err error) {
	tb.Helper()
	msg := fmt.Sprintf("PostgreSQL at %s is unreachable (%v): start it with scripts/services.sh", BaseURL(), err)
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip("SKIPPED, NOT TESTED: " + msg)
}

// FreshURL creates an empty schema, dropped when tb ends, and returns a URL
// whose connections use it (search_path). settings are more "-c name=value"
// session settings for those connections.
func FreshURL(tb testing.TB, settings ...string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, BaseURL())
	if err != nil {
		Unreachable(tb, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "orderflow_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, BaseURL())
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(BaseURL())
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("options", strings.Join(append([]string{"-c search_path=" + schema}, settings...), " "))
	// pgx decodes %20, not '+', as a space in a parameter.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String()
}
