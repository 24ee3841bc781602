// Package httpload measures the order service over real HTTP, as issue #2
// asks: signed risk callbacks, each durably recorded (SQLite,
// synchronous=FULL) and applied, and order creation, beside a bare
// JSON-decode handler served by the same server in the same run.
//
// Run starts the service in process (StartServer), then drives the three
// workloads with one tuned HTTP client over loopback, interleaved in rounds
// so that a noisy neighbour hurts all three alike, and reports medians. The
// load generator and the server share the machine's cores; on a small box the
// ratios, not the absolute rates, are the result.
package httpload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow"
)

// Workload names, as they appear in the report.
const (
	Bare      = "bare_decode"
	Callbacks = "callbacks"
	Create    = "create"
)

// Config says how much load to drive. The zero value is usable: 64
// connections, 5 rounds of 5 s per workload.
type Config struct {
	// Conns is the number of concurrent connections (and requests in
	// flight). Default 64.
	Conns int
	// Rounds is how many times each workload runs. Default 5.
	Rounds int
	// Duration is how long each workload runs per round, when Requests is
	// zero. Default 5 s. A callback round also ends when it runs out of
	// pre-created orders (the report says so).
	Duration time.Duration
	// Requests, when > 0, is the number of requests per workload per round,
	// instead of Duration.
	Requests int
	// Dir holds the SQLite database; "" means a new temporary directory,
	// removed at the end.
	Dir string
	// CPUProfile, when set, is a path prefix: the CPU profile of each round
	// of ProfileWorkload is written to "<CPUProfile>.r<round>" (merge them
	// with go tool pprof -top file.r*). The server runs in this process, so
	// the profile holds both sides; the load generator's part is the
	// net/http client stack (http.(*Transport), persistConn).
	CPUProfile string
	// ProfileWorkload is the workload profiled. Default Callbacks.
	ProfileWorkload string
	// Workers sizes the server's apply pool: 0 is serve's default (8), the
	// configuration the targets are about; other values are for
	// finding what limits it.
	Workers int
	// Logger receives the server's warnings; nil discards them.
	Logger *slog.Logger
	// Progress, when set, gets one line per finished workload run.
	Progress io.Writer
}

func (c Config) withDefaults() Config {
	if c.Conns <= 0 {
		c.Conns = 64
	}
	if c.Rounds <= 0 {
		c.Rounds = 5
	}
	if c.Duration <= 0 && c.Requests <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.ProfileWorkload == "" {
		c.ProfileWorkload = Callbacks
	}
	return c
}

// Sample is one workload run in one round.
type Sample struct {
	Workload string `json:"workload"`
	Round    int    `json:"round"`
	// Requests answered with the workload's success status (200, 202, 201).
	Requests int `json:"requests"`
	// Retries are 429/503 answers that were retried; Errors anything else.
	Retries  int    `json:"retries"`
	Errors   int    `json:"errors"`
	FirstErr string `json:"first_error,omitempty"`
	// Seconds is the run's duration: for callbacks, from the first request
	// until the store had nothing left unapplied.
	Seconds float64 `json:"seconds"`
	// PerSecond is Requests / Seconds.
	PerSecond float64 `json:"per_second"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	// ApplyLagMs is, for callbacks, the time from the last answer until
	// everything recorded was applied; RecordedPerSecond is the rate of 202
	// answers alone (Requests over the sending time, without that lag).
	ApplyLagMs        float64 `json:"apply_lag_ms,omitempty"`
	RecordedPerSecond float64 `json:"recorded_per_second,omitempty"`
	// Writes and Commits are the store's counters over the run (Stats
	// delta); CommitsPerRequest is Commits/Requests: the WAL fsyncs each
	// request paid for under group commit.
	Writes            uint64  `json:"writes"`
	Commits           uint64  `json:"commits"`
	CommitsPerRequest float64 `json:"commits_per_request"`
	// OutOfOrders is set when a callback round ended early because it ran
	// out of pre-created orders.
	OutOfOrders bool `json:"out_of_orders,omitempty"`
}

// Summary is one workload over all rounds.
type Summary struct {
	Workload string `json:"workload"`
	// Medians over rounds, and the spread of the rate.
	PerSecond         float64 `json:"per_second"`
	MinPerSecond      float64 `json:"min_per_second"`
	MaxPerSecond      float64 `json:"max_per_second"`
	P50Ms             float64 `json:"p50_ms"`
	P99Ms             float64 `json:"p99_ms"`
	CommitsPerRequest float64 `json:"commits_per_request"`
	Requests          int     `json:"requests"` // total over rounds
	Retries           int     `json:"retries"`
	Errors            int     `json:"errors"`
}

// Report is everything Run measured.
type Report struct {
	Conns      int       `json:"conns"`
	Workers    int       `json:"workers"` // apply pool size
	Rounds     int       `json:"rounds"`
	Duration   string    `json:"duration,omitempty"`
	Requests   int       `json:"requests_per_round,omitempty"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	NumCPU     int       `json:"num_cpu"`
	LoadBefore string    `json:"loadavg_before,omitempty"`
	LoadAfter  string    `json:"loadavg_after,omitempty"`
	Samples    []Sample  `json:"samples"`
	Summary    []Summary `json:"summary"`
	// Ratios of medians: callbacks/s and creates/s over bare requests/s.
	CallbackRatio float64 `json:"callback_ratio"`
	CreateRatio   float64 `json:"create_ratio"`
	// Per-round ratios (same round), medians: less exposed to drift.
	CallbackRatioPerRound float64 `json:"callback_ratio_per_round"`
	CreateRatioPerRound   float64 `json:"create_ratio_per_round"`
	// Accepted is every callback answered 202 (warm-up included); Approved
	// the orders the store holds as approved at the end; Unapplied what it
	// still lists as unapplied. All applied means Approved == Accepted and
	// Unapplied == 0.
	Accepted  int `json:"accepted"`
	Approved  int `json:"approved"`
	Unapplied int `json:"unapplied"`
	// Store totals over the whole process life, pre-creation included.
	TotalWrites  uint64   `json:"total_writes"`
	TotalCommits uint64   `json:"total_commits"`
	Profiles     []string `json:"profiles,omitempty"`
}

// SummaryOf returns the named workload's summary, or the zero Summary.
func (r *Report) SummaryOf(workload string) Summary {
	for _, s := range r.Summary {
		if s.Workload == workload {
			return s
		}
	}
	return Summary{}
}

// Run starts a server, drives the workloads, shuts the server down and
// returns what it measured. It fails on setup errors; request errors are
// counted in the report.
func Run(ctx context.Context, cfg Config) (_ *Report, err error) {
	cfg = cfg.withDefaults()
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "httpload-*"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	}
	srv, err := StartServer(ctx, filepath.Join(dir, "httpload.db"), cfg.Workers, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = errors.Join(err, srv.Close(cctx))
	}()
	h := &harness{cfg: cfg, srv: srv, d: newDriver(srv.URL, cfg.Conns)}
	defer h.d.close()
	rep := &Report{
		Conns: cfg.Conns, Workers: srv.workers, Rounds: cfg.Rounds, Requests: cfg.Requests,
		GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), LoadBefore: loadavg(),
	}
	if cfg.Requests == 0 {
		rep.Duration = cfg.Duration.String()
	}
	if err := h.warmUp(ctx); err != nil {
		return nil, err
	}
	workloads := []string{Bare, Callbacks, Create}
	for round := 1; round <= cfg.Rounds; round++ {
		// Rotate the order each round, so none always runs first or last.
		for k := range workloads {
			w := workloads[(k+round-1)%len(workloads)]
			s, prof, err := h.runOne(ctx, w, round)
			if err != nil {
				return nil, err
			}
			if prof != "" {
				rep.Profiles = append(rep.Profiles, prof)
			}
			rep.Samples = append(rep.Samples, s)
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "round %d %-11s %7d req %6.0f/s p50 %6.2f ms p99 %6.2f ms commits/req %.3f retries %d errors %d",
					round, w, s.Requests, s.PerSecond, s.P50Ms, s.P99Ms, s.CommitsPerRequest, s.Retries, s.Errors)
				if w == Callbacks {
					fmt.Fprintf(cfg.Progress, " (recorded %.0f/s, apply lag %.0f ms)", s.RecordedPerSecond, s.ApplyLagMs)
				}
				fmt.Fprintln(cfg.Progress)
			}
		}
	}
	rep.LoadAfter = loadavg()
	rep.summarize(workloads)
	rep.Accepted = h.accepted
	if rep.Approved, err = countApproved(ctx, srv); err != nil {
		return nil, err
	}
	left, err := srv.Store.UnappliedOrders(ctx, 1000)
	if err != nil {
		return nil, err
	}
	rep.Unapplied = len(left)
	st := srv.Store.Stats()
	rep.TotalWrites, rep.TotalCommits = st.Writes, st.Commits
	return rep, nil
}

// harness holds the state between workload runs.
type harness struct {
	cfg      Config
	srv      *Server
	d        *driver
	orders   []string // pending orders no callback was sent for yet
	seq      int      // event ids
	accepted int
	lastCB   float64 // last callback rate, to size the next round's orders
}

// warmUp opens the connections and warms every route a little.
func (h *harness) warmUp(ctx context.Context) error {
	n := 4 * h.cfg.Conns
	if h.cfg.Requests > 0 {
		n = min(n, h.cfg.Requests)
	}
	for _, w := range []string{Bare, Create, Callbacks} {
		s, err := h.load(ctx, w, n, time.Time{})
		if err != nil {
			return err
		}
		if s.Errors > 0 {
			return fmt.Errorf("warm-up %s: %d errors, first: %s", w, s.Errors, s.FirstErr)
		}
	}
	return nil
}

// runOne runs workload w for one round, with the CPU profile around it when
// asked.
func (h *harness) runOne(ctx context.Context, w string, round int) (Sample, string, error) {
	n := h.cfg.Requests
	var deadline time.Time
	prof := ""
	if h.cfg.CPUProfile != "" && w == h.cfg.ProfileWorkload {
		prof = fmt.Sprintf("%s.r%d", h.cfg.CPUProfile, round)
	}
	if n == 0 {
		// Callbacks need one order each: size the stock from the last
		// round (+50%) before the clock starts.
		if w == Callbacks {
			n = int(max(h.lastCB, 2000) * h.cfg.Duration.Seconds() * 1.5)
		}
	}
	if w == Callbacks {
		if err := h.stock(ctx, n); err != nil {
			return Sample{}, "", err
		}
	}
	var stopProf func()
	if prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return Sample{}, "", err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return Sample{}, "", err
		}
		stopProf = func() { pprof.StopCPUProfile(); f.Close() }
	}
	if h.cfg.Requests == 0 {
		deadline = time.Now().Add(h.cfg.Duration)
	}
	s, err := h.load(ctx, w, n, deadline)
	if stopProf != nil {
		stopProf()
	}
	s.Round = round
	if w == Callbacks {
		h.lastCB = s.PerSecond
	}
	return s, prof, err
}

// load runs workload w for n requests (n = 0: until deadline).
func (h *harness) load(ctx context.Context, w string, n int, deadline time.Time) (Sample, error) {
	var (
		reqs  []request
		cycle bool
		want  int
	)
	switch w {
	case Bare:
		reqs, cycle, want = h.callbackRequests(DecodePath, h.fakeOrders(1024)), true, 200
	case Create:
		reqs, cycle, want = createRequests(256), true, 201
	case Callbacks:
		if err := h.stock(ctx, n); err != nil {
			return Sample{}, err
		}
		take := len(h.orders)
		if n > 0 {
			take = n
		}
		reqs, want = h.callbackRequests("/v1/risk/callbacks", h.orders[:take]), 202
		h.orders = h.orders[take:]
	default:
		return Sample{}, fmt.Errorf("unknown workload %q", w)
	}
	if n > 0 && cycle {
		// A fixed count: stop after n even though the slice is reused.
		reqs = repeatTo(reqs, n)
		cycle = false
	}
	before := h.srv.Store.Stats()
	r := h.d.drive(ctx, reqs, cycle, deadline, want, w == Create)
	s := Sample{Workload: w, Requests: r.sent, Retries: r.retries, Errors: r.errors, FirstErr: r.firstErr,
		Seconds: r.elapsed.Seconds(), P50Ms: ms(percentile(r.lat, 0.50)), P99Ms: ms(percentile(r.lat, 0.99)),
		MaxMs: ms(percentile(r.lat, 1))}
	switch w {
	case Create:
		for _, id := range r.ids {
			h.orders = append(h.orders, string(id))
		}
	case Callbacks:
		h.accepted += r.sent
		s.OutOfOrders = !deadline.IsZero() && time.Until(deadline) > 0 && ctx.Err() == nil
		lag, err := h.waitApplied(ctx)
		if err != nil {
			return s, err
		}
		s.ApplyLagMs = ms(lag)
		if r.elapsed > 0 {
			s.RecordedPerSecond = float64(r.sent) / r.elapsed.Seconds()
		}
		s.Seconds = (r.elapsed + lag).Seconds()
	}
	after := h.srv.Store.Stats()
	s.Writes, s.Commits = after.Writes-before.Writes, after.Commits-before.Commits
	if s.Requests > 0 {
		s.CommitsPerRequest = float64(s.Commits) / float64(s.Requests)
	}
	if s.Seconds > 0 {
		s.PerSecond = float64(s.Requests) / s.Seconds
	}
	return s, ctx.Err()
}

// waitApplied polls the store until nothing recorded is left unapplied and
// returns how long that took. It asks the cheapest question the schema
// allows (is there any row in the partial index inbox_unapplied?) every 2 ms, not
// UnappliedOrders, whose GROUP BY reads every unapplied entry: polled every
// half millisecond that query took a third of the CPU (profile) from the
// appliers it was waiting for. Run checks with UnappliedOrders once at the end.
func (h *harness) waitApplied(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	for {
		var left bool
		err := h.srv.Store.ReadDB().QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM inbox WHERE outcome IS NULL)`).Scan(&left)
		if err != nil {
			return 0, fmt.Errorf("unapplied callbacks: %w", err)
		}
		if !left {
			return time.Since(start), nil
		}
		if time.Since(start) > time.Minute {
			return 0, errors.New("callbacks still unapplied after a minute")
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// stock tops the pending orders up to at least n, creating them in process
// with the service (not timed), Conns at a time so they group-commit.
func (h *harness) stock(ctx context.Context, n int) error {
	need := n - len(h.orders)
	if need <= 0 {
		return nil
	}
	var (
		mu    sync.Mutex
		left  atomic.Int64
		first error
		wg    sync.WaitGroup
	)
	left.Store(int64(need))
	for range h.cfg.Conns {
		wg.Go(func() {
			for left.Add(-1) >= 0 && ctx.Err() == nil {
				o, _, err := h.srv.Service.Create(ctx, newOrder(need), "")
				mu.Lock()
				if err != nil {
					if first == nil {
						first = err
					}
				} else {
					h.orders = append(h.orders, o.ID)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		return fmt.Errorf("pre-create orders: %w", first)
	}
	return ctx.Err()
}

func (h *harness) fakeOrders(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("ord_bare%08d", i)
	}
	return ids
}

// callbackRequests signs one risk.decided approve per order.
func (h *harness) callbackRequests(path string, orders []string) []request {
	now := time.Now()
	reqs := make([]request, len(orders))
	for i, id := range orders {
		h.seq++
		body := fmt.Appendf(nil, `{"event_id":"evt_%d","order_id":%q,"event_type":"risk.decided","decision":"approve","score":0.031,"model_version":"v3","decided_at":%q}`,
			h.seq, id, now.UTC().Format(time.RFC3339Nano))
		reqs[i] = request{path: path, body: body, sig: signFor(h.srv.Secret, now, body)}
	}
	return reqs
}

func createRequests(n int) []request {
	reqs := make([]request, n)
	for i := range reqs {
		reqs[i] = request{path: "/v1/orders", body: fmt.Appendf(nil,
			`{"user_id":"u_%d","amount_minor":129900,"currency":"CNY","region":"east-china","items":[{"sku":"sku-1","qty":2}],"internal":false,"ip":"203.0.113.7","device_id":"d-9"}`, i)}
	}
	return reqs
}

func newOrder(i int) orderflow.NewOrder {
	return orderflow.NewOrder{UserID: fmt.Sprintf("u_pre%d", i%997), AmountMinor: 129900, Currency: "CNY",
		Region: "east-china", Items: []orderflow.Item{{SKU: "sku-1", Qty: 2}}}
}

func repeatTo(reqs []request, n int) []request {
	out := make([]request, n)
	for i := range out {
		out[i] = reqs[i%len(reqs)]
	}
	return out
}

// countApproved counts orders the store holds as approved: the proof that
// every accepted callback was applied, not just recorded.
func countApproved(ctx context.Context, srv *Server) (int, error) {
	var n int
	err := srv.Store.ReadDB().QueryRowContext(ctx, `SELECT count(*) FROM orders WHERE status = ?`, string(orderflow.StatusApproved)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count approved: %w", err)
	}
	return n, nil
}

func (r *Report) summarize(workloads []string) {
	rates := map[string][]float64{}
	for _, w := range workloads {
		var s Summary
		s.Workload = w
		var ps, p50, p99, cpr []float64
		for _, x := range r.Samples {
			if x.Workload != w {
				continue
			}
			ps, p50, p99, cpr = append(ps, x.PerSecond), append(p50, x.P50Ms), append(p99, x.P99Ms), append(cpr, x.CommitsPerRequest)
			s.Requests += x.Requests
			s.Retries += x.Retries
			s.Errors += x.Errors
		}
		rates[w] = ps
		s.PerSecond, s.P50Ms, s.P99Ms, s.CommitsPerRequest = median(ps), median(p50), median(p99), median(cpr)
		if len(ps) > 0 {
			s.MinPerSecond, s.MaxPerSecond = slices.Min(ps), slices.Max(ps)
		}
		r.Summary = append(r.Summary, s)
	}
	if bare := r.SummaryOf(Bare).PerSecond; bare > 0 {
		r.CallbackRatio = r.SummaryOf(Callbacks).PerSecond / bare
		r.CreateRatio = r.SummaryOf(Create).PerSecond / bare
	}
	var cb, cr []float64
	for i, b := range rates[Bare] {
		if b > 0 && i < len(rates[Callbacks]) && i < len(rates[Create]) {
			cb, cr = append(cb, rates[Callbacks][i]/b), append(cr, rates[Create][i]/b)
		}
	}
	r.CallbackRatioPerRound, r.CreateRatioPerRound = median(cb), median(cr)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// loadavg is /proc/loadavg's first three fields, "" where there is none.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
