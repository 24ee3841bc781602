package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/orderflow/orderflow/store/postgres/pgtest"
)

func TestMigrateSQLiteAndPostgres(t *testing.T) {
	ctx := context.Background()
	stores := []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "db") }},
		{"postgres", func(t *testing.T) string { return pgtest.FreshURL(t) }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			u := st.store(t)
			for range 2 { // idempotent
				var out bytes.Buffer
				if err := runMigrate(ctx, []string{"--store", u}, func(string) string { return "" }, &out); err != nil {
					t.Fatalf("migrate %s: %v", u, err)
				}
				if !strings.HasPrefix(out.String(), "migrated ") {
					t.Fatalf("output %q", out.String())
				}
			}
			if st.name == "postgres" {
				conn, err := pgx.Connect(ctx, u)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				var n int
				if err := conn.QueryRow(ctx, `SELECT count(*) FROM orders`).Scan(&n); err != nil {
					t.Fatalf("orders table after migrate: %v", err)
				}
			}
		})
	}
}

func TestMigrateRejectsUnknownStore(t *testing.T) {
	err := runMigrate(context.Background(), []string{"--store", "mysql://x"}, func(string) string { return "" }, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "sqlite://") || !strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("err = %v, want one naming both store kinds", err)
	}
}
