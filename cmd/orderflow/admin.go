package main

import (
	"context"
	"fmt"
	"io"

	"github.com/orderflow/orderflow/lab"
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
	path, err := sqlitePath(c.Store)
	if err != nil {
		return err
	}
	if err := sqlite.Migrate(ctx, path); err != nil {
		return fmt.Errorf("migrate %s: %w", c.Store, err)
	}
	fmt.Fprintln(stdout, "migrated", c.Store)
	return nil
}

// runLab runs the runtime experiments of package lab.
func runLab(ctx context.Context, args []string, stdout io.Writer) error {
	return lab.Main(ctx, args, stdout)
}
