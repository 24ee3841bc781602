package httpload_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/bench/httpload"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRunShape runs the harness for a handful of requests: every workload
// appears in every round, nothing failed, and every accepted callback was
// applied (its order is approved, nothing is left unapplied). No timing is
// asserted: the rates are the benchmark's business, not the test's.
func TestRunShape(t *testing.T) {
	const rounds, requests = 2, 40
	prefix := filepath.Join(t.TempDir(), "cpu")
	rep, err := httpload.Run(context.Background(), httpload.Config{
		Conns: 8, Rounds: rounds, Requests: requests, Dir: t.TempDir(), CPUProfile: prefix,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rep.Samples), 3*rounds; got != want {
		t.Fatalf("samples: got %d, want %d", got, want)
	}
	for _, s := range rep.Samples {
		if s.Requests != requests || s.Errors != 0 {
			t.Errorf("%s round %d: %d requests, %d errors (%s), want %d and 0", s.Workload, s.Round, s.Requests, s.Errors, s.FirstErr, requests)
		}
		if s.PerSecond <= 0 || s.P99Ms < s.P50Ms {
			t.Errorf("%s round %d: rate %v, p50 %v, p99 %v", s.Workload, s.Round, s.PerSecond, s.P50Ms, s.P99Ms)
		}
	}
	tests := []struct {
		workload string
		writes   bool
	}{
		{httpload.Bare, false},
		{httpload.Callbacks, true},
		{httpload.Create, true},
	}
	for _, tt := range tests {
		s := rep.SummaryOf(tt.workload)
		if s.Requests != rounds*requests {
			t.Errorf("%s: %d requests in total, want %d", tt.workload, s.Requests, rounds*requests)
		}
		if got := s.CommitsPerRequest > 0; got != tt.writes {
			t.Errorf("%s: commits per request %v, want > 0: %v", tt.workload, s.CommitsPerRequest, tt.writes)
		}
	}
	if rep.CallbackRatio <= 0 || rep.CreateRatio <= 0 {
		t.Errorf("ratios: callbacks %v, create %v", rep.CallbackRatio, rep.CreateRatio)
	}
	if rep.Accepted < rounds*requests || rep.Approved != rep.Accepted || rep.Unapplied != 0 {
		t.Errorf("accepted %d, approved %d, unapplied %d: want every accepted callback applied", rep.Accepted, rep.Approved, rep.Unapplied)
	}
	if len(rep.Profiles) != rounds {
		t.Fatalf("profiles: %v, want %d", rep.Profiles, rounds)
	}
	for _, p := range rep.Profiles {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("profile %s: %v", p, err)
		}
	}
}
