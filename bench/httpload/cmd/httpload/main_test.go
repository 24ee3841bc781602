package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/bench/httpload"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRun drives the program as a user would, in both output formats.
func TestRun(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in the text output; "" means JSON
	}{
		{"JSON", []string{"-json"}, ""},
		{"Text", nil, "callbacks/bare"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			args := append([]string{"-conns", "4", "-rounds", "1", "-requests", "20", "-q", "-dir", t.TempDir()}, tt.args...)
			if err := run(context.Background(), args, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			if tt.want != "" {
				if !strings.Contains(out.String(), tt.want) {
					t.Errorf("output lacks %q:\n%s", tt.want, out.String())
				}
				return
			}
			var rep httpload.Report
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("decode report: %v\n%s", err, out.String())
			}
			if rep.Approved != rep.Accepted || rep.Accepted == 0 || len(rep.Summary) != 3 {
				t.Errorf("report: accepted %d, approved %d, %d summaries", rep.Accepted, rep.Approved, len(rep.Summary))
			}
		})
	}
}

func TestRunBadFlag(t *testing.T) {
	if err := run(context.Background(), []string{"-conns", "x"}, io.Discard, io.Discard); err == nil {
		t.Fatal("run with a bad flag: got nil error")
	}
}
