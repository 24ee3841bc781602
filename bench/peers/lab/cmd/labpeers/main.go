// Command labpeers is `orderflow lab` with the peer experiments of
// bench/peers/lab registered too:
//
//	cd bench/peers && go run ./lab/cmd/labpeers syncmap-xsync
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/orderflow/orderflow/lab"

	_ "github.com/orderflow/orderflow/bench/peers/lab"
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
