package locktest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// frozenEnv carries the lock key to the helper process; its presence is what
// makes RunFrozenHolder play the helper.
const frozenEnv = "ORDERFLOW_LOCKTEST_FROZEN_KEY"

// FrozenTTL is the lease TTL of the frozen holder: the shortest etcd grants.
const FrozenTTL = 2 * time.Second

// RunFrozenHolder shows fencing against a real pause, for Lockers shared
// between processes (not local). It starts the test binary again as a helper
// that takes the lock and writes to the fenced table, then freezes it with
// SIGSTOP, so nothing in it runs, renewal included, just as in a long GC
// pause, a stalled VM or a swapped-out process. Once the TTL has run out, this
// process takes the lock and writes. Then the helper is thawed and writes
// again under its old token, without looking at Done: the table refuses it.
//
// newLocker is called in both processes. The test calling RunFrozenHolder
// must run it unconditionally (the helper re-runs exactly that test).
func RunFrozenHolder(t *testing.T, newLocker func(t *testing.T) orderflow.Locker) {
	if key := os.Getenv(frozenEnv); key != "" {
		frozenHelper(t, newLocker(t), key)
		return
	}
	fence := OpenFence(t)
	l := newLocker(t)
	key := Key(t)
	ctx := ctxFor(t, time.Minute)

	cmd := exec.Command(os.Args[0], "-test.run="+runPattern(t.Name()), "-test.count=1")
	cmd.Env = append(os.Environ(), frozenEnv+"="+key)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the helper: %v", err)
	}
	exited := false
	t.Cleanup(func() {
		if !exited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := bufio.NewScanner(stdout)
	first, err := strconv.ParseUint(expect(t, lines, "TOKEN"), 10, 64)
	if err != nil {
		t.Fatalf("helper's token: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP: %v", err)
	}
	frozen := time.Now()
	le, err := l.Acquire(ctx, key, FrozenTTL)
	if err != nil {
		t.Fatalf("Acquire while the holder is frozen: %v", err)
	}
	t.Logf("frozen holder's token %d; second holder got %d after %v", first, le.Token(), time.Since(frozen).Round(time.Millisecond))
	if le.Token() <= first {
		t.Errorf("second holder's token %d is not above the frozen holder's %d", le.Token(), first)
	}
	if ok, err := fence.Write(ctx, key, le.Token(), "second"); err != nil || !ok {
		t.Fatalf("second holder's write: accepted=%v err=%v", ok, err)
	}

	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT: %v", err)
	}
	if _, err := io.WriteString(stdin, "write\n"); err != nil {
		t.Fatalf("telling the helper to write: %v", err)
	}
	if got := expect(t, lines, "WRITE"); got != "rejected" {
		t.Errorf("the thawed holder's write was %s, want rejected", got)
	}
	t.Logf("thawed holder's release: %s", expect(t, lines, "RELEASE"))
	_, _ = io.Copy(io.Discard, stdout)
	exited = true
	if err := cmd.Wait(); err != nil {
		t.Errorf("helper: %v", err)
	}
	_, value, err := fence.Read(ctx, key)
	if err != nil || value != "second" {
		t.Errorf("fenced value = %q (%v), want %q", value, err, "second")
	}
	if err := le.Release(ctx); err != nil {
		t.Errorf("Release: %v", err)
	}
}

// frozenHelper is the holder that gets frozen. It speaks in lines prefixed by
// "LOCKTEST " on stdout.
func frozenHelper(t *testing.T, l orderflow.Locker, key string) {
	fence := OpenFence(t)
	fence.keep = true // the parent still reads the row after we exit
	ctx := ctxFor(t, time.Minute)
	le, err := l.Acquire(ctx, key, FrozenTTL)
	if err != nil {
		t.Fatalf("helper Acquire: %v", err)
	}
	if ok, err := fence.Write(ctx, key, le.Token(), "first"); err != nil || !ok {
		t.Fatalf("helper's first write: accepted=%v err=%v", ok, err)
	}
	fmt.Printf("LOCKTEST TOKEN %d\n", le.Token())
	// Frozen here. After the thaw, write as if nothing happened.
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatalf("helper waiting for its cue: %v", err)
	}
	ok, err := fence.Write(ctx, key, le.Token(), "stale")
	if err != nil {
		t.Fatalf("helper's stale write: %v", err)
	}
	verdict := "rejected"
	if ok {
		verdict = "accepted"
	}
	fmt.Printf("LOCKTEST WRITE %s\n", verdict)
	err = le.Release(ctx)
	fmt.Printf("LOCKTEST RELEASE %v\n", err)
}

func expect(t *testing.T, lines *bufio.Scanner, what string) string {
	t.Helper()
	prefix := "LOCKTEST " + what + " "
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), prefix); ok {
			return rest
		}
	}
	err := lines.Err()
	if err == nil {
		err = errors.New("helper's output ended")
	}
	t.Fatalf("waiting for %q from the helper: %v", prefix, err)
	return ""
}

// runPattern is the -test.run pattern that selects exactly the test name.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}
