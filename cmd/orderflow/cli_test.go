package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStartupFailsWithOneLine runs the binary with bad set-ups: each must exit
// non-zero with a one-line reason, as API.md's command line promises.
func TestStartupFailsWithOneLine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary")
	}
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"ErrUnknownFlag", []string{"serve", "--bogus"}, nil, "bogus"},
		{"ErrBadDuration", []string{"serve", "--shutdown-timeout", "soon"}, nil, "shutdown-timeout"},
		{"ErrBadEnv", []string{"serve"}, []string{"ORDERFLOW_SHUTDOWN_TIMEOUT=soon"}, "ORDERFLOW_SHUTDOWN_TIMEOUT"},
		{"ErrStoreScheme", []string{"serve", "--store", "mysql://x"}, nil, "store"},
		{"ErrStoreUnusable", []string{"serve", "--store", "sqlite://" + filepath.Join(notADir, "db")}, nil, "store"},
		{"ErrOrderWithoutSecret", []string{"order", "--store", "sqlite://" + filepath.Join(dir, "o.db")}, nil, "callback-secret"},
		{"ErrUnknownCommand", []string{"frobnicate"}, nil, "frobnicate"},
		{"ErrLogLevel", []string{"serve", "--log-level", "loud"}, nil, "log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, append(tt.args, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0")...)
			cmd.Env = append(os.Environ(), tt.env...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("exit: %v, want a non-zero exit; output:\n%s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, tt.want) || !strings.HasPrefix(last, "orderflow: ") {
				t.Fatalf("last line %q does not give the reason (want it to mention %q); output:\n%s", last, tt.want, out)
			}
		})
	}
}

// TestSIGTERMExitsZero: a clean shutdown exits 0 well within the timeout.
func TestSIGTERMExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary")
	}
	p := startProc(t, "serve", "--store", "sqlite://"+filepath.Join(t.TempDir(), "db"),
		"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--shutdown-timeout", "5s")
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10 s after SIGTERM; log:\n%s", p.output())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM; log:\n%s", code, p.output())
	}
	t.Logf("stopped in %v", time.Since(start))
}
