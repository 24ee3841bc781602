package sqlbus_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/bus/bustest"
	"github.com/orderflow/orderflow/bus/sqlbus"
	"github.com/orderflow/orderflow/store/sqlite"
)

const crashChildEnv = "ORDERFLOW_SQLBUS_CRASH_CHILD"

// crashConfig is the children's bus: three deliveries, quick polls.
var crashConfig = sqlbus.Config{MaxDeliveries: 3, PollInterval: 5 * time.Millisecond, BackoffBase: time.Millisecond}

// TestCrashLoopEndsInDeadLetters runs the consumer in child processes whose
// handler kills the process on a poison event, as a crash in a dependency
// would. A delivery cut short by a crash is not a failed delivery the bus
// hears of, yet it must count: after MaxDeliveries crashed processes the next
// one dead-letters the poison without handling it, and goes on with the
// order's next event.
func TestCrashLoopEndsInDeadLetters(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(t, path)
		return
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "crash.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	poison, next := bustest.Event("o1", 0), bustest.Event("o1", 1)
	err = publish(ctx, st, poison, next)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	crashes := 0
	for ; ; crashes++ {
		if crashes > crashConfig.MaxDeliveries+1 {
			t.Fatalf("%d crashed processes and the poison still comes back", crashes)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashLoopEndsInDeadLetters$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 3 {
			continue // crashed on the poison
		}
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		break
	}
	if crashes != crashConfig.MaxDeliveries {
		t.Errorf("%d processes crashed on the poison, want MaxDeliveries = %d", crashes, crashConfig.MaxDeliveries)
	}
	st, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dls, err := sqlbus.New(st, crashConfig).DeadLetters(ctx, 10)
	if err != nil || len(dls) != 1 {
		t.Fatalf("DeadLetters = %+v, %v; want the poison", dls, err)
	}
	if d := dls[0]; d.Event.ID != poison.ID || d.Attempts != crashConfig.MaxDeliveries || !strings.Contains(d.LastError, "crash loop") {
		t.Errorf("dead letter = %+v; want %s after %d attempts, the reason naming a crash loop", d, poison.ID, crashConfig.MaxDeliveries)
	}
}

// crashChild consumes the file at path: the poison exits the process with
// status 3 mid-delivery; the order's next event ends the run cleanly.
func crashChild(t *testing.T, path string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cctx, stop := context.WithCancel(ctx)
	err = sqlbus.New(st, crashConfig).Consume(cctx, "risk", func(_ context.Context, d orderflow.Delivery) error {
		if d.ID == bustest.Event("o1", 0).ID {
			os.Exit(3) // no deferred function runs, no ack, no failure recorded
		}
		stop()
		return nil
	})
	if err != nil || ctx.Err() != nil {
		t.Fatalf("Consume = %v (context %v)", err, ctx.Err())
	}
}
