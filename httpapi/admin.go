package httpapi

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"runtime"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/telemetry"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminConfig wires the admin listener's handler.
type AdminConfig struct {
	// Metrics is served at /metrics (its Registry). Required.
	Metrics *telemetry.Metrics
	Logger  *slog.Logger // slog.Default()
	// MutexProfileFraction, when > 0, turns on mutex profiling at 1/n of
	// contention events (runtime.SetMutexProfileFraction); 0 leaves the
	// runtime's setting alone. Process-wide, set once at start.
	MutexProfileFraction int
	// BlockProfileRate, when > 0, turns on block profiling: one sample per
	// that many nanoseconds blocked (runtime.SetBlockProfileRate).
	BlockProfileRate int
	// Extra mounts more admin handlers by ServeMux pattern, with the same
	// instrumentation (GET|PUT /admin/chaos, the dead-letter routes).
	Extra map[string]http.Handler
}

// NewAdmin returns the admin listener's handler: /metrics and /debug/pprof/…
// on a mux of its own. The pprof handlers are net/http/pprof's, registered
// here only; that package also registers itself on http.DefaultServeMux when
// imported, which orderflow never serves.
func NewAdmin(cfg AdminConfig) http.Handler {
	if cfg.Metrics == nil {
		panic("httpapi: AdminConfig.Metrics is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.MutexProfileFraction > 0 {
		runtime.SetMutexProfileFraction(cfg.MutexProfileFraction)
	}
	if cfg.BlockProfileRate > 0 {
		runtime.SetBlockProfileRate(cfg.BlockProfileRate)
	}
	in := &instrumenter{metrics: cfg.Metrics, log: log}
	mux := http.NewServeMux()
	handle := func(pattern string, h http.Handler) { mux.Handle(pattern, in.wrap(pattern, h)) }
	reg := cfg.Metrics.Registry
	handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	// Profiles are not instrumented: a 30 s CPU profile would only skew the
	// request-duration histogram.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	for pattern, h := range cfg.Extra {
		handle(pattern, h)
	}
	mux.Handle("/", in.wrap("unmatched", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, orderflow.Errorf(orderflow.ENotFound, "no route for %s %s", r.Method, r.URL.Path))
	})))
	return mux
}
