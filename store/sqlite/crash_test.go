package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/store/sqlite"
	"github.com/orderflow/orderflow/store/storetest"
)

const crashChildEnv = "ORDERFLOW_SQLITE_CRASH_CHILD"

// TestKill9KeepsAcknowledgedWrites runs writers in a child process, kills it
// with SIGKILL mid-stream and checks that every write the child saw
// acknowledged is in the file afterwards: an answer is only given after the
// commit. (Power loss is what synchronous=FULL adds on top; that needs a
// machine to unplug and is checked by TestDurabilitySettings instead.)
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(t, path)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9KeepsAcknowledgedWrites$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const killAfter = 200
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() { // after the kill, drain what the child wrote before it died
		if id, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			acked = append(acked, id)
			if len(acked) == killAfter {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	_ = cmd.Wait()
	if len(acked) < killAfter {
		t.Fatalf("child acknowledged only %d writes before it ended", len(acked))
	}
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer s.Close()
	for _, id := range acked {
		c := storetest.NewCallback(id, orderflow.EventRiskDecided, orderflow.DecisionApprove, 0.2, "v3")
		if r, err := s.RecordCallback(ctx, c); err != nil || r != orderflow.Duplicate {
			t.Fatalf("acknowledged callback of %s after kill -9: %v, %v; want it recorded (duplicate)", id, r, err)
		}
	}
	t.Logf("%d acknowledged callbacks, all present after SIGKILL", len(acked))
}

// crashChild writes the callback path from 16 goroutines and prints "ack id"
// after each acknowledged callback, until killed (or 60 s pass).
func crashChild(t *testing.T, path string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("ord_%d_%d", g, i)
				if _, _, err := s.CreateOrder(ctx, storetest.NewOrder(id, "u_1", time.Now()), storetest.NewEvent(id), nil); err != nil {
					return
				}
				c := storetest.NewCallback(id, orderflow.EventRiskDecided, orderflow.DecisionApprove, 0.2, "v3")
				if _, err := s.RecordCallback(ctx, c); err != nil {
					return
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %s\n", id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
