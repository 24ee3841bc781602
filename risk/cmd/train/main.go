// Command train fits the v3 logistic model on synthetic orders and writes it
// as JSON, the form of risk/v3_weights.json:
//
//	go run ./risk/cmd/train -seed 1 -n 200000 > risk/v3_weights.json
//
// With -eval it instead scores held-out synthetic orders (use another seed)
// with v2.1 and the checked-in v3 and prints the Markdown tables of
// docs/models.md:
//
//	go run ./risk/cmd/train -eval -seed 2 -n 100000
//
// Features are computed as the engine computes them: the orders are replayed
// in creation-time order through risk.MemoryCounters. Orders of the first
// -warmup of synthetic time are observed but not used, because every user
// looks new before the counters have seen them.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/orderflow/orderflow/risk"
	"github.com/orderflow/orderflow/risk/synth"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
}

type options struct {
	seed      uint64
	n         int
	users     int
	warmup    time.Duration
	retention time.Duration
	reviewFPR float64
	rejectFPR float64
	eval      bool
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	var o options
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the synthetic stream")
	fs.IntVar(&o.n, "n", 200_000, "orders to generate")
	fs.IntVar(&o.users, "users", 10_000, "legitimate users at the start")
	fs.DurationVar(&o.warmup, "warmup", 48*time.Hour, "synthetic time observed before orders are used")
	fs.DurationVar(&o.retention, "retention", 7*24*time.Hour, "MemoryCounters retention, as the engine runs it")
	fs.Float64Var(&o.reviewFPR, "review-fpr", 0.01, "share of legitimate orders v3 may review or reject")
	fs.Float64Var(&o.rejectFPR, "reject-fpr", 0.002, "share of legitimate orders v3 may reject")
	fs.BoolVar(&o.eval, "eval", false, "evaluate v2.1 and the checked-in v3 instead of training")
	if err := fs.Parse(args); err != nil {
		return err
	}
	samples, err := Replay(ctx, synth.Config{Seed: o.seed, Users: o.users}, o.n, o.warmup, o.retention)
	if err != nil {
		return err
	}
	if o.eval {
		return report(stdout, args, samples)
	}
	m, err := Train(samples, o.reviewFPR, o.rejectFPR)
	if err != nil {
		return err
	}
	m.TrainedBy = "go run ./risk/cmd/train " + strings.Join(args, " ")
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

// Sample is a replayed order: its features, truth and pattern.
type Sample struct {
	risk.Sample
	Pattern synth.Pattern
}

// Replay generates n orders of cfg's stream, observes all of them in order
// through fresh MemoryCounters, and returns the samples of those created
// after the warm-up.
func Replay(ctx context.Context, cfg synth.Config, n int, warmup, retention time.Duration) ([]Sample, error) {
	g := synth.New(cfg)
	c := risk.NewMemoryCounters(risk.MemoryConfig{Retention: retention})
	var out []Sample
	var start time.Time
	for i := range n {
		o := g.Next()
		if i == 0 {
			start = o.CreatedAt
		}
		snap, err := c.Observe(ctx, risk.Observation{
			OrderID: o.ID, UserID: o.UserID, DeviceID: o.DeviceID, AmountMinor: o.AmountMinor, At: o.CreatedAt,
		})
		if err != nil {
			return nil, err
		}
		if o.CreatedAt.Sub(start) < warmup {
			continue
		}
		out = append(out, Sample{Sample: risk.Sample{Features: risk.Extract(&o.Order, snap), Fraud: o.Fraud}, Pattern: o.Pattern})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no orders after the %v warm-up: raise -n", warmup)
	}
	return out, nil
}

// Train fits v3 and sets its thresholds by the shares of legitimate orders
// it may stop.
func Train(samples []Sample, reviewFPR, rejectFPR float64) (*risk.Logistic, error) {
	rs := make([]risk.Sample, len(samples))
	for i := range samples {
		rs[i] = samples[i].Sample
	}
	m, err := risk.FitLogistic(rs, risk.FitConfig{Version: "v3"})
	if err != nil {
		return nil, err
	}
	scores, labels := scoreAll(m, samples)
	m.Cutoffs = risk.ThresholdsForFPR(scores, labels, reviewFPR, rejectFPR)
	// Round so the checked-in file reads well; the rounding moves the
	// shares of legitimate orders stopped by far less than their noise.
	m.Cutoffs.Review = roundUp(m.Cutoffs.Review)
	m.Cutoffs.Reject = roundUp(m.Cutoffs.Reject)
	return risk.ParseLogistic(mustJSON(m))
}

func roundUp(x float64) float64 {
	const q = 1e4
	return min(float64(int64(x*q+0.999999))/q, 1)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func scoreAll(s risk.Scorer, samples []Sample) ([]float64, []bool) {
	scores, labels := make([]float64, len(samples)), make([]bool, len(samples))
	for i := range samples {
		scores[i], labels[i] = s.Score(samples[i].Features), samples[i].Fraud
	}
	return scores, labels
}
