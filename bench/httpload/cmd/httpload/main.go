// Command httpload runs the over-HTTP load measurement of issue #2: the
// order service in process on loopback, driven with signed callbacks
// (recorded with synchronous=FULL and applied), order creation, and a bare
// JSON-decode handler on the same server, interleaved in rounds.
//
//	go run ./bench/httpload/cmd/httpload -conns 64 -rounds 5 -duration 5s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/orderflow/orderflow/bench/httpload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "httpload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg httpload.Config
	fs := flag.NewFlagSet("httpload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.Conns, "conns", 64, "concurrent connections (requests in flight)")
	fs.IntVar(&cfg.Rounds, "rounds", 5, "rounds; each runs every workload once")
	fs.DurationVar(&cfg.Duration, "duration", 5e9, "time per workload per round (unless -requests)")
	fs.IntVar(&cfg.Requests, "requests", 0, "requests per workload per round (overrides -duration)")
	fs.StringVar(&cfg.Dir, "dir", "", "directory for the SQLite database (default: a temporary one)")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of each round of -profile to `prefix`.r<N>")
	fs.StringVar(&cfg.ProfileWorkload, "profile", httpload.Callbacks, "workload to profile: bare_decode, callbacks or create")
	fs.IntVar(&cfg.Workers, "workers", 0, "apply pool workers (0: serve's default, 8)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	quiet := fs.Bool("q", false, "no progress lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Requests > 0 {
		cfg.Duration = 0
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if !*quiet {
		cfg.Progress = stderr
	}
	fmt.Fprintf(stderr, "httpload: pid %d\n", os.Getpid())
	rep, err := httpload.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printText(stdout, rep)
}

func printText(w io.Writer, r *httpload.Report) error {
	fmt.Fprintf(w, "conns %d, apply workers %d, rounds %d, GOMAXPROCS %d, loadavg before %s after %s\n",
		r.Conns, r.Workers, r.Rounds, r.GOMAXPROCS, r.LoadBefore, r.LoadAfter)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\treq/s (median)\tmin\tmax\tp50 ms\tp99 ms\tcommits/req\trequests\tretries\terrors\t")
	for _, s := range r.Summary {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t%.3f\t%d\t%d\t%d\t\n",
			s.Workload, s.PerSecond, s.MinPerSecond, s.MaxPerSecond, s.P50Ms, s.P99Ms, s.CommitsPerRequest, s.Requests, s.Retries, s.Errors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "callbacks/bare %.1f%% (per-round median %.1f%%), create/bare %.1f%% (per-round median %.1f%%)\n",
		100*r.CallbackRatio, 100*r.CallbackRatioPerRound, 100*r.CreateRatio, 100*r.CreateRatioPerRound)
	fmt.Fprintf(w, "callbacks accepted %d, orders approved %d, unapplied %d; store total writes %d commits %d\n",
		r.Accepted, r.Approved, r.Unapplied, r.TotalWrites, r.TotalCommits)
	for _, p := range r.Profiles {
		fmt.Fprintln(w, "profile:", p)
	}
	return nil
}
