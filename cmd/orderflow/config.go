package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"
)

// config holds the common flags of API.md. Each flag is mirrored by an
// environment variable ORDERFLOW_<NAME> in upper snake case; a flag given on
// the command line wins over the variable.
type config struct {
	Addr            string
	AdminAddr       string
	Store           string
	Bus             string
	Lock            string
	CallbackSecret  string
	APIToken        string
	OrderURL        string
	ShutdownTimeout time.Duration
	LogLevel        string

	// Tuning beyond API.md's common flags.
	Workers       int
	QueueSize     int
	SweepInterval time.Duration
	MutexProfile  int
	BlockProfile  int
	ReviewSplit   int
	StuckAfter    time.Duration

	// The risk engine of serve.
	ChallengerSplit int
	OutboxRetention time.Duration
	PruneInterval   time.Duration
	RiskConcurrency int
	CallbackTimeout time.Duration

	// The Go runtime's collector (serve and order; GOGC / GOMEMLIMIT win).
	GCPercent      int
	MemoryLimitMiB int64

	// CommitLinger is sqlite.WithCommitLinger (serve and order on SQLite).
	CommitLinger time.Duration
}

func newFlagSet(name string, c *config) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, as one line, by run
	fs.StringVar(&c.Addr, "addr", ":8080", "public listener address (port 0 picks a free port)")
	fs.StringVar(&c.AdminAddr, "admin-addr", "127.0.0.1:6060", "admin listener address: /metrics, /debug/pprof/, /admin/…")
	fs.StringVar(&c.Store, "store", "sqlite://data/orderflow.db", "storage URL: sqlite://<path> (path taken verbatim)")
	fs.StringVar(&c.Bus, "bus", "sql", "event bus: sql")
	fs.StringVar(&c.Lock, "lock", "local", "lock backend: local")
	fs.StringVar(&c.CallbackSecret, "callback-secret", "", "comma-separated HMAC secrets for risk callbacks (first one signs)")
	fs.StringVar(&c.APIToken, "api-token", "", "comma-separated bearer tokens required on /v1/orders… (empty: no auth)")
	fs.StringVar(&c.OrderURL, "order-url", "", "where risk callbacks go: comma-separated order replica URLs")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long a SIGTERM shutdown may take")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	// 64, not a few per core: an apply waits on a group commit, so more workers
	// share each fsync (docs/benchmarks/http-load.md: 0.26 commits per
	// callback at 8 workers, 0.05 at 64, and the apply backlog gone).
	fs.IntVar(&c.Workers, "workers", 64, "workers that apply recorded callbacks")
	fs.IntVar(&c.QueueSize, "queue-size", 4096, "bounded queue of the apply pool; full means 429 at the edge")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", 2*time.Second, "how often the sweeper applies what was left unapplied")
	fs.IntVar(&c.MutexProfile, "mutex-profile-fraction", 0, "runtime.SetMutexProfileFraction (0: off)")
	fs.IntVar(&c.BlockProfile, "block-profile-rate", 0, "runtime.SetBlockProfileRate in ns (0: off)")
	fs.IntVar(&c.ChallengerSplit, "challenger-split", 0, "serve: routing buckets (of 10000) scored by the challenger v3; 0 sends everyone to v2.1")
	fs.DurationVar(&c.StuckAfter, "stuck-after", 10*time.Minute, "orders pending_review or in_review longer than this are stuck (/admin/stuck, gauge)")
	fs.DurationVar(&c.OutboxRetention, "outbox-retention", time.Hour, "serve: outbox rows acknowledged by every group are pruned after this")
	fs.DurationVar(&c.PruneInterval, "prune-interval", time.Minute, "serve: how often acknowledged outbox rows are pruned")
	// A handler mostly waits on two group commits (decision, callback record);
	// more handlers share them, and the engine decides at most handlers /
	// handle time (Little's law). 16 gave p99 257 ms at 300/s where 64 gave
	// 91 ms; in serve 64 then capped the pipeline near 1,300/s at ~48 ms per
	// handle, where 256 decided 2,000/s (docs/benchmarks/pipeline.md). The
	// distributed risk process keeps 64 until it is measured.
	riskConcurrency := 64
	if name == string(modeServe) {
		riskConcurrency = 256
	}
	fs.IntVar(&c.RiskConcurrency, "risk-concurrency", riskConcurrency, "order.created events the risk engine handles at once (serve: 256, risk: 64)")
	fs.DurationVar(&c.CallbackTimeout, "callback-timeout", 800*time.Millisecond, "serve: deadline of one callback attempt (the service-call budget)")
	// A decided order allocates ~80 KB in serve against a live heap of
	// ~15 MB, so at GOGC 100 the collector ran ~7 times a second at 700
	// orders/s. 400 lets the heap grow to ~5× the live set (~75 MB) and
	// collects a quarter as often; the soft limit bounds the heap when the
	// live set grows (a backlog) by collecting more often near it instead.
	// docs/benchmarks/pipeline.md has the CPU per order with each setting.
	fs.IntVar(&c.GCPercent, "gc-percent", 400, "Go GC target percentage (runtime/debug.SetGCPercent) unless $GOGC is set; negative: GC off below the memory limit")
	// While writes arrive concurrently, a commit waits this long for more to
	// join it: every commit costs the writer about the same CPU (WAL frames
	// of its hot pages, an fsync), so fuller commits are cheaper per write;
	// docs/benchmarks/pipeline.md has commits and CPU per order with and
	// without it. A lone write never waits.
	fs.DurationVar(&c.CommitLinger, "commit-linger", 2*time.Millisecond, "sqlite: how long a commit may wait for more writes while writes arrive concurrently (0: commit at once)")
	fs.Int64Var(&c.MemoryLimitMiB, "memory-limit-mib", 1024, "Go soft memory limit in MiB (runtime/debug.SetMemoryLimit) unless $GOMEMLIMIT is set; 0: none")
	return fs
}

// parseFlags parses args, then fills every flag not given from its
// ORDERFLOW_* variable. Any problem comes back as one line.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return fmt.Errorf("bad flag: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bad flag: unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		name := envName(f.Name)
		if v := getenv(name); v != "" {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("bad value for %s: %w", name, e)
			}
		}
	})
	return err
}

var errHelp = errors.New("help requested")

// envName maps a flag name to its environment variable: admin-addr becomes
// ORDERFLOW_ADMIN_ADDR.
func envName(flagName string) string {
	return "ORDERFLOW_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func printDefaults(fs *flag.FlagSet, w io.Writer) {
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("bad flag: -log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// splitList splits a comma-separated flag value, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// version is the module version stamped by the go tool, or "devel".
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
