package httpload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/chaos"
	"github.com/orderflow/orderflow/httpapi"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/store/sqlite"
	"github.com/orderflow/orderflow/telemetry"
	"github.com/orderflow/orderflow/workerpool"
)

// DecodePath is the bare handler's route: it decodes a callback body with
// encoding/json and answers 200, nothing else. It is the yardstick the
// service's real routes are compared against, served by the same server,
// listener and middleware.
const DecodePath = "/bench/decode"

// Defaults of `orderflow order` (cmd/orderflow/config.go), repeated here so
// the measured server is configured as the real one is.
const (
	defaultWorkers       = 8
	defaultQueueSize     = 4096
	defaultSweepInterval = 2 * time.Second
)

// Server is the order service wired as `orderflow order` wires it, running
// in this process on 127.0.0.1 with a SQLite store (synchronous=FULL, the
// store's default), plus the bare decode route on the same mux.
type Server struct {
	// URL is the public listener's base URL, "http://127.0.0.1:<port>".
	URL string
	// Store is the server's store, for its write counters and to see what
	// is still unapplied.
	Store *sqlite.Store
	// Service is the order service, to pre-create orders without HTTP.
	Service *order.Service
	// Secret signs callbacks the server accepts.
	Secret []byte

	workers int
	srv     *http.Server
	pool    *workerpool.Pool
	chaos   *chaos.Injector

	stopSweep context.CancelFunc
	wg        sync.WaitGroup
	serveErr  error
}

// StartServer opens (creating) the SQLite database at path and serves the
// order service on a free loopback port until Close. log may be nil (warnings
// and above to nowhere).
//
// The wiring mirrors cmd/orderflow/serve.go (app.run in `order` mode): sqlite
// store → apply workerpool (8 workers, queue 4096, wait histogram) → order.Service
// (sweeper running) → httpapi.NewPublic (metrics, logger) → chaos middleware
// (all faults off) → http.Server with serve's timeouts. Two differences,
// both because the pieces live in package main: the store is not wrapped in
// serve's wiredStore, which in `order` mode only carries a span context
// across the apply pool (a no-op with the default tracer provider), and
// there is no admin listener.
//
// workers sizes the apply pool; 0 means serve's default (8).
func StartServer(ctx context.Context, path string, workers int, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if workers <= 0 {
		workers = defaultWorkers
	}
	s := &Server{Store: st, Secret: []byte("httpload-secret-0123456789abcdef"), workers: workers}
	if err := s.wire(ctx, workers, log); err != nil {
		if s.pool != nil {
			_ = s.pool.Close(ctx)
		}
		if s.chaos != nil {
			_ = s.chaos.Close()
		}
		_ = st.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) wire(ctx context.Context, workers int, log *slog.Logger) error {
	metrics := telemetry.New()
	telemetry.InstallPropagator()
	s.chaos = chaos.New(chaos.Config{Logger: log, WriteError: func(w http.ResponseWriter, _ *http.Request, status int) {
		httpapi.WriteError(w, orderflow.Errorf(orderflow.EInternal, "injected fault (chaos), status %d", status))
	}})
	if err := metrics.Registry.Register(s.chaos.Collector()); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	s.pool = workerpool.New(workerpool.Config{
		Workers: workers, QueueSize: defaultQueueSize,
		OnWait: metrics.PoolWaitObserver("apply"),
	})
	if err := metrics.RegisterPool("apply", s.pool); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	svc, err := order.New(order.Config{Store: s.Store, Pool: s.pool, Logger: log, SweepInterval: defaultSweepInterval})
	if err != nil {
		return err
	}
	s.Service = svc
	public := httpapi.NewPublic(httpapi.PublicConfig{
		Service: svc, CallbackSecrets: [][]byte{s.Secret},
		Ready:   map[string]orderflow.Pinger{"store": s.Store},
		Metrics: metrics, Logger: log,
		Extra: map[string]http.Handler{"POST " + DecodePath: http.HandlerFunc(decodeOnly)},
	})
	public = s.chaos.Middleware(public)
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.URL = "http://" + ln.Addr().String()
	s.srv = &http.Server{
		Handler:           public,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	sweepCtx, stop := context.WithCancel(context.Background())
	s.stopSweep = stop
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = fmt.Errorf("serve: %w", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		_ = svc.Run(sweepCtx)
	}()
	return nil
}

// Close shuts down in serve's order: the listener (waiting for requests in
// flight), the sweeper, the apply pool (draining it), then the store.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	if err := s.srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shutdown: %w", err))
	}
	s.stopSweep()
	if err := s.pool.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("drain apply pool: %w", err))
	}
	s.wg.Wait()
	if s.serveErr != nil {
		errs = append(errs, s.serveErr)
	}
	if err := s.chaos.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := s.Store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	return errors.Join(errs...)
}

// decodeOnly is the bare handler: the same 64 KiB cap and the same decode
// target as the callback route, with encoding/json, and a small JSON answer.
// No signature, no validation, no storage.
func decodeOnly(w http.ResponseWriter, r *http.Request) {
	var c orderflow.Callback
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, httpapi.MaxBodyBytes)).Decode(&c); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"status":"ok"}`)
}
