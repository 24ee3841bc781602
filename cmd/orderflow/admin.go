package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/orderflow/orderflow/lab"
	"github.com/orderflow/orderflow/store/postgres"
	"github.com/orderflow/orderflow/store/sqlite"
)

// runMigrate applies the embedded migrations to the store and exits.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var c config
	fs := newFlagSet("migrate", &c)
	if err := parseFlags(fs, args, getenv); err != nil {
		if err == errHelp {
			printDefaults(fs, stdout)
			return nil
		}
		return err
	}
	var err error
	switch {
	case strings.HasPrefix(c.Store, "postgres://") || strings.HasPrefix(c.Store, "postgresql://"):
		err = postgres.Migrate(ctx, c.Store)
	default:
		path, perr := sqlitePath(c.Store)
		if perr != nil {
			return fmt.Errorf("%w (or postgres://…)", perr)
		}
		err = sqlite.Migrate(ctx, path)
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	fmt.Fprintln(stdout, "migrated", redactURL(c.Store))
	return nil
}

// runLab runs the runtime experiments of package lab.
func runLab(ctx context.Context, args []string, stdout io.Writer) error {
	return lab.Main(ctx, args, stdout)
}

// redactURL hides a password in a store URL before it is printed.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return s
}
