package lab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/lab"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestExperimentsQuick runs every registered experiment in its quick form and
// checks the shape of what it reports: a claim, measurements, a verdict and
// its condition. It asserts no timing: the suite runs under -race on a
// shared 2-core machine. Subtests are not parallel, because experiments
// change process-wide runtime settings.
func TestExperimentsQuick(t *testing.T) {
	for _, e := range lab.All() {
		t.Run(e.Name, func(t *testing.T) {
			r, err := lab.RunOne(context.Background(), e, lab.Options{Quick: true})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if r.Name != e.Name {
				t.Errorf("Name = %q, want %q", r.Name, e.Name)
			}
			if strings.TrimSpace(r.Claim) == "" {
				t.Error("no claim")
			}
			if len(r.Measurements) == 0 {
				t.Error("no measurements")
			}
			for _, m := range r.Measurements {
				if m.Name == "" || m.Unit == "" || m.Runs < 1 {
					t.Errorf("incomplete measurement %+v", m)
				}
			}
			switch r.Verdict {
			case lab.Holds, lab.Refuted, lab.Depends:
			default:
				t.Errorf("Verdict = %q, want holds, refuted or depends", r.Verdict)
			}
			if strings.TrimSpace(r.Condition) == "" {
				t.Error("no condition")
			}
			var buf bytes.Buffer
			if err := lab.WriteText(&buf, r); err != nil {
				t.Fatal(err)
			}
			if err := lab.WriteMarkdown(&buf, r); err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", buf.String())
		})
	}
}

func TestMain_Listing(t *testing.T) {
	var out bytes.Buffer
	if err := lab.Main(context.Background(), nil, &out); err != nil {
		t.Fatal(err)
	}
	for _, e := range lab.All() {
		if !strings.Contains(out.String(), e.Name) {
			t.Errorf("listing lacks %q:\n%s", e.Name, out.String())
		}
	}
}

func TestMain_Errors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want error
	}{
		{"ErrUnknown", []string{"no-such-experiment"}, lab.ErrUnknown},
		{"BadFlag", []string{"--nope"}, nil},
		{"JSONAndMarkdown", []string{"--json", "--markdown", "type-assert"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := lab.Main(context.Background(), tt.args, &bytes.Buffer{})
			if err == nil {
				t.Fatal("got nil error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMain_JSON(t *testing.T) {
	var out bytes.Buffer
	if err := lab.Main(context.Background(), []string{"type-assert", "--quick", "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var rep lab.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if len(rep.Results) != 1 || rep.Results[0].Name != "type-assert" || rep.Env.GoVersion == "" {
		t.Errorf("report = %+v", rep)
	}
}

func TestMain_Canceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := lab.Main(ctx, []string{"--quick", "type-assert"}, &bytes.Buffer{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestMain_Markdown(t *testing.T) {
	var out bytes.Buffer
	if err := lab.Main(context.Background(), []string{"--markdown", "--quick", "traceid-unsafe"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Lab", "GOMAXPROCS", "| CPU |", "| Go |", "## traceid-unsafe", "**Claim.**", "**Verdict: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
