package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/chaos"
	"github.com/orderflow/orderflow/httpapi"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/risk/engine"
	"github.com/orderflow/orderflow/store/sqlite"
	"github.com/orderflow/orderflow/telemetry"
	"github.com/orderflow/orderflow/workerpool"
)

type mode string

const (
	modeServe mode = "serve" // order service + risk engine, one process
	modeOrder mode = "order" // the order service alone
)

// runServer runs the order service (and, in serve, the risk engine) until
// ctx ends, then shuts down gracefully: stop accepting, drain the apply pool,
// flush and close the store.
func runServer(ctx context.Context, m mode, args []string, getenv func(string) string, stdout io.Writer) error {
	var c config
	fs := newFlagSet(string(m), &c)
	if err := parseFlags(fs, args, getenv); err != nil {
		if errors.Is(err, errHelp) {
			printDefaults(fs, stdout)
			return nil
		}
		return err
	}
	level, err := parseLevel(c.LogLevel)
	if err != nil {
		return err
	}
	log := telemetry.NewLogger(stdout, level)
	tuneGC(c, getenv)
	secrets, err := callbackSecrets(m, c.CallbackSecret, log)
	if err != nil {
		return err
	}
	if err := checkBackends(c); err != nil {
		return err
	}
	path, err := sqlitePath(c.Store)
	if err != nil {
		return err
	}
	if c.CommitLinger < 0 {
		return fmt.Errorf("bad flag: -commit-linger %s: must not be negative", c.CommitLinger)
	}
	st, err := sqlite.Open(ctx, path, sqlite.WithCommitLinger(c.CommitLinger))
	if err != nil {
		return fmt.Errorf("store %s unusable: %w", c.Store, err)
	}
	tp, stopTracing, err := setupTracing(ctx, getenv, version())
	if err != nil {
		_ = st.Close()
		return err
	}
	// Global, because httpapi's otelhttp handler uses the global provider.
	otel.SetTracerProvider(tp)
	a := &app{cfg: c, mode: m, log: log, store: st, secrets: secrets}
	err = a.run(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	if terr := stopTracing(sctx); terr != nil {
		log.Warn("flush traces", "err", terr)
	}
	return err
}

// app is one running server process and everything it owns.
type app struct {
	cfg     config
	mode    mode // modeServe adds the risk engine; zero is the order service alone
	log     *slog.Logger
	store   *sqlite.Store
	secrets [][]byte
	metrics *telemetry.Metrics
	pool    *workerpool.Pool
	orders  *order.Service
	chaos   *chaos.Injector
	risk    *riskParts // serve only

	engineMetrics *engine.Metrics
	// onListen, when set, learns each listener's address (tests).
	onListen func(name, addr string)
	// wrapConsumer and wrapCallbackTransport let tests put faults between
	// the bus and the engine, and between the callback client and the
	// network.
	wrapConsumer          func(orderflow.Consumer) orderflow.Consumer
	wrapCallbackTransport func(http.RoundTripper) http.RoundTripper
	// breakerDryRun keeps the callback breaker from rejecting (a test
	// whose faults are meant for the retry path, not the breaker).
	breakerDryRun bool
}

func (a *app) run(ctx context.Context) error {
	a.metrics = telemetry.New()
	telemetry.InstallPropagator()
	a.chaos = chaos.New(chaos.Config{Logger: a.log, WriteError: func(w http.ResponseWriter, _ *http.Request, status int) {
		httpapi.WriteError(w, chaosError(status))
	}})
	defer a.chaos.Close()
	if err := a.metrics.Registry.Register(a.chaos.Collector()); err != nil {
		return a.abort(fmt.Errorf("metrics: %w", err))
	}
	if err := a.metrics.Registry.Register(newStoreCollector(a.store)); err != nil {
		return a.abort(fmt.Errorf("metrics: %w", err))
	}
	a.pool = workerpool.New(workerpool.Config{
		Workers: a.cfg.Workers, QueueSize: a.cfg.QueueSize,
		OnWait: a.metrics.PoolWaitObserver("apply"),
	})
	if err := a.metrics.RegisterPool("apply", a.pool); err != nil {
		return a.abort(fmt.Errorf("metrics: %w", err))
	}
	// Listen first: the risk engine's callback client needs the public
	// listener's real address (port 0 in tests) before anything is served.
	pubLn, err := a.listen(ctx, "public", a.cfg.Addr)
	if err != nil {
		return a.abort(err)
	}
	admLn, err := a.listen(ctx, "admin", a.cfg.AdminAddr)
	if err != nil {
		pubLn.Close()
		return a.abort(err)
	}
	closeLns := func(err error) error {
		pubLn.Close()
		admLn.Close()
		return a.abort(err)
	}
	var notify func()
	if a.mode == modeServe {
		if a.risk, err = a.buildRisk(pubLn.Addr().String()); err != nil {
			return closeLns(err)
		}
		notify = a.risk.bus.Notify
	}
	svc, err := order.New(order.Config{
		Store: newWiredStore(a.store, notify, a.tracerProvider()), Pool: a.pool, Logger: a.log,
		SweepInterval: a.cfg.SweepInterval,
	})
	if err != nil {
		return closeLns(err)
	}
	a.orders = svc
	tokens := splitList(a.cfg.APIToken)
	if len(tokens) == 0 {
		a.log.Warn("no --api-token: /v1/orders is open to any client")
	}
	publicExtra, adminExtra, err := a.extraRoutes()
	if err != nil {
		return closeLns(err)
	}
	public := httpapi.NewPublic(httpapi.PublicConfig{
		Service: svc, CallbackSecrets: a.secrets, APITokens: tokens,
		Ready:   map[string]orderflow.Pinger{"store": a.store},
		Metrics: a.metrics, Logger: a.log, Extra: publicExtra,
	})
	admin := httpapi.NewAdmin(httpapi.AdminConfig{
		Metrics: a.metrics, Logger: a.log, Extra: adminExtra,
		MutexProfileFraction: a.cfg.MutexProfile, BlockProfileRate: a.cfg.BlockProfile,
	})
	// httpapi makes the server span (otelhttp, global provider); chaos sits
	// inside it, so an injected fault shows in the trace.
	public = a.chaos.Middleware(public)
	var tasks []func(context.Context)
	if a.risk != nil {
		tasks = a.riskTasks(a.risk)
	}
	return a.serve(ctx, []*listener{
		{name: "public", ln: pubLn, srv: newHTTPServer(public, a.log)},
		{name: "admin", ln: admLn, srv: newHTTPServer(admin, a.log)},
	}, tasks)
}

// chaosError is what an injected fault answers in the API's error shape.
func chaosError(status int) error {
	code := orderflow.EInternal
	switch status {
	case http.StatusTooManyRequests:
		code = orderflow.EResourceExhausted
	case http.StatusServiceUnavailable:
		code = orderflow.EUnavailable
	case http.StatusGatewayTimeout:
		code = orderflow.EDeadlineExceeded
	}
	return orderflow.Errorf(code, "injected fault (chaos)")
}

type listener struct {
	name string
	ln   net.Listener
	srv  *http.Server
}

// serve runs the listeners, the sweeper and tasks until ctx ends or a
// listener fails, then shuts everything down in order: the tasks first (the
// risk engine finishes the callbacks it is sending, through the listeners
// still open), then the listeners, the apply pool and the store.
func (a *app) serve(ctx context.Context, lns []*listener, tasks []func(context.Context)) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(lns))
	for _, l := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.srv.Serve(l.ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s listener: %w", l.name, err)
				cancel()
			}
		}()
	}
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = a.orders.Run(sweepCtx)
	}()
	taskCtx, stopTasks := context.WithCancel(context.Background())
	var tasksWG sync.WaitGroup
	for _, task := range tasks {
		tasksWG.Go(func() { task(taskCtx) })
	}
	<-runCtx.Done()
	a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout.String())

	sctx, scancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer scancel()
	stopTasks()
	tasksWG.Wait()
	if a.risk != nil {
		a.risk.client.CloseIdleConnections()
	}
	var errs []error
	for _, l := range lns {
		if err := l.srv.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("%s listener shutdown: %w", l.name, err))
		}
	}
	stopSweep()
	if err := a.pool.Close(sctx); err != nil {
		errs = append(errs, fmt.Errorf("drain apply pool: %w", err))
	}
	wg.Wait()
	if err := a.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	close(errc)
	for err := range errc {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		a.log.Info("stopped cleanly")
	}
	return errors.Join(errs...)
}

// abort releases what run opened before it could start serving.
func (a *app) abort(err error) error {
	if a.pool != nil {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		defer cancel()
		_ = a.pool.Close(ctx)
	}
	_ = a.store.Close()
	return err
}

func (a *app) listen(ctx context.Context, name, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listener on %s: %w", name, addr, err)
	}
	a.log.Info("listening", "listener", name, "addr", ln.Addr().String())
	if a.onListen != nil {
		a.onListen(name, ln.Addr().String())
	}
	return ln, nil
}

// newHTTPServer sets the timeouts a public server needs: a slow client cannot
// hold a connection forever on headers or an idle keep-alive.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// callbackSecrets returns the configured secrets. serve generates one and
// shares it in process when none is given; order refuses to start without.
func callbackSecrets(m mode, flagValue string, log *slog.Logger) ([][]byte, error) {
	var out [][]byte
	for _, s := range splitList(flagValue) {
		out = append(out, []byte(s))
	}
	if len(out) > 0 {
		return out, nil
	}
	if m != modeServe {
		return nil, fmt.Errorf("%s needs --callback-secret (or ORDERFLOW_CALLBACK_SECRET)", m)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate callback secret: %w", err)
	}
	log.Info("no --callback-secret: generated one, shared in process only")
	return [][]byte{[]byte(hex.EncodeToString(b))}, nil
}

// checkBackends refuses backends this build does not run in this mode.
func checkBackends(c config) error {
	if c.Bus != "sql" {
		return fmt.Errorf("bad flag: -bus %q: this build supports sql", c.Bus)
	}
	if c.Lock != "local" {
		return fmt.Errorf("bad flag: -lock %q: this build supports local", c.Lock)
	}
	if c.Workers < 1 || c.QueueSize < 1 {
		return fmt.Errorf("bad flag: -workers and -queue-size must be >= 1")
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("bad flag: -shutdown-timeout must be > 0")
	}
	return nil
}

// sqlitePath takes everything after sqlite:// verbatim as the file path.
func sqlitePath(url string) (string, error) {
	path, ok := strings.CutPrefix(url, "sqlite://")
	if !ok || path == "" {
		return "", fmt.Errorf("bad flag: -store %q: want sqlite://<path>", url)
	}
	return path, nil
}

// tuneGC applies --gc-percent and --memory-limit-mib, except where the
// runtime's own GOGC / GOMEMLIMIT variables are set: those already took
// effect at start-up and are the operator's explicit choice.
func tuneGC(c config, getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(c.GCPercent)
	}
	if getenv("GOMEMLIMIT") == "" && c.MemoryLimitMiB > 0 {
		debug.SetMemoryLimit(c.MemoryLimitMiB << 20)
	}
}
