// Command orderflow is the one binary of the project: the order service, the
// risk engine, both in one process, the load generator, the runtime lab and
// the operator's tools.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/orderflow/orderflow/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsagePrinted) {
			fmt.Fprintln(os.Stderr, "orderflow:", err)
		}
		os.Exit(2)
	}
}

// errUsagePrinted says the usage text already went out: nothing more to say.
var errUsagePrinted = errors.New("usage printed")

const usage = `orderflow: an order service with an asynchronous risk-control pipeline.

Usage:
  orderflow serve   [flags]   order service + risk engine in one process (embedded)
  orderflow order   [flags]   the order service alone (--store postgres://… runs it distributed, with the outbox relay)
  orderflow risk    [flags]   a risk engine replica (distributed: PostgreSQL, Redis Streams, --order-url a,b)
  orderflow loadgen [flags]   synthetic traffic with ground-truth labels; progress and a summary
  orderflow lab     [--quick] [--json|--markdown] [name|--all]   runtime experiments
  orderflow deadletters list|redrive <id> [--admin-addr host:port]
                              what the risk engine gave up on, and sending it again
  orderflow migrate [flags]   apply the embedded schema migrations and exit
  orderflow version           print the version

Run "orderflow <command> -h" for the flags of a command.
`

// run is the whole program: main only supplies the process's environment, so
// tests call run exactly as a user runs the binary.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return errUsagePrinted
	}
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "serve":
		return runServer(ctx, modeServe, rest, getenv, stdout)
	case "order":
		if distributed(rest, getenv) {
			return runOrderDist(ctx, rest, getenv, stdout)
		}
		return runServer(ctx, modeOrder, rest, getenv, stdout)
	case "risk":
		return runRiskDist(ctx, rest, getenv, stdout)
	case "migrate":
		return runMigrate(ctx, rest, getenv, stdout)
	case "loadgen":
		return loadgen.Main(ctx, rest, stdout)
	case "deadletters":
		return runDeadLetters(ctx, rest, getenv, stdout)
	case "lab":
		return runLab(ctx, rest, stdout)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "orderflow", version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return fmt.Errorf("unknown command %q (try orderflow help)", cmd)
	}
}
