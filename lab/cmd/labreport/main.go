// Command labreport runs the lab experiments of package lab; it takes the
// arguments of `orderflow lab` and exists so that docs/lab.md can be
// regenerated before (and independently of) cmd/orderflow:
//
//	go run ./lab/cmd/labreport --markdown --all > docs/lab.md
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/orderflow/orderflow/lab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := lab.Main(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
