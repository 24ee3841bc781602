// Package maintest runs loadgen.Main exactly as `orderflow loadgen` will,
// with the arguments in LOADGEN_ARGS (split on white space), until
// cmd/orderflow wires the command:
//
//	LOADGEN_ARGS='--url http://127.0.0.1:8080 --rate 200 --duration 20s' \
//	    go test ./loadgen/internal/maintest -run TestLoadgen -count=1 -v
//
// Without LOADGEN_ARGS the test skips: it needs a running server.
package maintest

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/loadgen"
	"go.uber.org/goleak"
)

// Main starts pollers, labelers and senders; all must be gone when it returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLoadgen(t *testing.T) {
	args, ok := os.LookupEnv("LOADGEN_ARGS")
	if !ok {
		t.Skip("LOADGEN_ARGS not set: this harness drives a running server")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := loadgen.Main(ctx, strings.Fields(args), os.Stdout); err != nil {
		t.Fatal(err)
	}
}
