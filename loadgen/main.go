// Package loadgen is `orderflow loadgen`: it sends the synthetic order stream
// of risk/synth to an order service at a fixed offered rate, watches the risk
// decisions come back, posts the hidden ground truth as labels, plays
// adversarial users who retry until approved, and summarises throughput,
// created→decided latency, outcomes, errors, and how well each model version
// separated fraud from legitimate orders.
//
// Pacing is open loop: orders are offered on the wall clock whatever the
// server does, so a slow server shows up as latency and as "dropped by
// client" (when --concurrency requests are already in flight), never as a
// quietly lower offered rate. Memory stays bounded: latencies go into
// log-linear histograms, scores into fixed bins, and the set of orders being
// polled and the label queue have caps.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

// Main runs `orderflow loadgen` with args (without the program and command
// names) and writes progress and the summary to stdout. It returns an error
// for bad flags; an interrupted run (ctx ended) still prints its summary and
// returns nil. --api-token defaults to ORDERFLOW_API_TOKEN, so the token
// need not be on the command line.
func Main(ctx context.Context, args []string, stdout io.Writer) error {
	return run(ctx, args, os.Getenv, stdout)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, f, err := parseFlags(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	asJSON, quiet := f.asJSON, f.quiet
	if f.procs > 0 {
		// loadgen usually shares the machine with the server it measures:
		// on 2 cores, GOMAXPROCS 1 took its CPU per order from 0.52 to
		// 0.43 ms (fewer spinning threads and cross-thread wake-ups), CPU
		// that serve gets instead (docs/benchmarks/pipeline.md). One P
		// runs ~2,000 orders/s here; more are needed beyond that.
		runtime.GOMAXPROCS(f.procs)
	}
	if !quiet && !asJSON {
		cfg.Progress, cfg.TTY = stdout, IsTerminal(stdout)
	}
	if f.cpuProfile != "" {
		// loadgen's own share of the CPU per order is measured too
		// (scripts/pipeline-bench.sh); this is where to look at it.
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return fmt.Errorf("loadgen: --cpu-profile: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("loadgen: --cpu-profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	s, err := Run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	return s.WriteText(stdout)
}

// processFlags are the flags that are not Config's.
type processFlags struct {
	asJSON, quiet bool
	procs         int
	cpuProfile    string
}

func parseFlags(args []string, getenv func(string) string, stdout io.Writer) (cfg Config, f processFlags, err error) {
	fs := flag.NewFlagSet("orderflow loadgen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "base URL of the order service")
	fs.StringVar(&cfg.LabelsURL, "labels-url", "", "base URL of the risk engine for POST /v1/risk/labels (default: --url, as in serve)")
	fs.Float64Var(&cfg.Rate, "rate", 100, "offered load, orders per second (open loop)")
	fs.IntVar(&cfg.Concurrency, "concurrency", DefaultConcurrency, "max creates in flight; a slot beyond it is dropped and counted")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "length of the sending phase (0: until --orders or interrupted)")
	fs.Int64Var(&cfg.Orders, "orders", 0, "number of orders to offer (0: until --duration); alone it lifts the --duration default")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the synthetic stream")
	fs.IntVar(&cfg.Users, "users", 0, "legitimate users of the stream (0: risk/synth's 10,000)")
	fs.StringVar(&cfg.UserPrefix, "user-prefix", "", "prefix of user ids (default: lg<run id>, fresh users every run)")
	fs.DurationVar(&cfg.LabelDelay, "label-delay", DefaultLabelDelay, "delay between seeing a decision and posting its ground truth (negative: no labels)")
	fs.StringVar(&cfg.APIToken, "api-token", "", "bearer token for /v1/orders (default $ORDERFLOW_API_TOKEN; first of a comma-separated list)")
	fs.IntVar(&cfg.AdversaryTries, "adversary-tries", DefaultAdversaryTries, "attempts an adversarial user makes before giving up")
	fs.IntVar(&cfg.Pollers, "pollers", DefaultPollers, "goroutines polling for decisions")
	fs.IntVar(&cfg.WatchMax, "watch-max", DefaultWatchMax, "max orders watched for a decision at once")
	fs.StringVar(&cfg.Watch, "watch", WatchGet, "how decisions are observed: get (GET /v1/orders/{id} per order) or list (page GET /v1/orders every --list-every, by id only what the pages miss)")
	fs.DurationVar(&cfg.ListEvery, "list-every", DefaultListEvery, "with --watch list: interval between listings")
	fs.DurationVar(&cfg.Drain, "drain", DefaultDrain, "max wait after sending for the last decisions and labels")
	fs.DurationVar(&cfg.Timeout, "timeout", DefaultTimeout, "per-request timeout")
	fs.DurationVar(&cfg.ProgressEvery, "progress-every", 0, "progress interval (default 1s on a terminal, 5s otherwise)")
	fs.BoolVar(&f.asJSON, "json", false, "print the summary as JSON (and no progress)")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress lines, only the summary")
	fs.StringVar(&f.cpuProfile, "cpu-profile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	fs.IntVar(&f.procs, "procs", 0, "GOMAXPROCS of the loadgen process (0: the runtime's default); 1 leaves more of a small shared machine to the server")
	if err = fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.PrintDefaults()
		}
		return cfg, f, fmt.Errorf("loadgen: %w", err)
	}
	if fs.NArg() > 0 {
		return cfg, f, fmt.Errorf("loadgen: unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["orders"] && !set["duration"] {
		cfg.Duration = 0
	}
	if !set["api-token"] {
		cfg.APIToken = getenv("ORDERFLOW_API_TOKEN")
	}
	// A rotation list is accepted as the server takes it; any one works.
	cfg.APIToken, _, _ = strings.Cut(cfg.APIToken, ",")
	cfg.APIToken = strings.TrimSpace(cfg.APIToken)
	if f.procs < 0 {
		return cfg, f, fmt.Errorf("loadgen: --procs %d: want 0 or more", f.procs)
	}
	return cfg, f, nil
}
