package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/breaker"
	"github.com/orderflow/orderflow/bus/redisstream"
	"github.com/orderflow/orderflow/deadline"
	"github.com/orderflow/orderflow/httpapi"
	"github.com/orderflow/orderflow/httpapi/riskapi"
	"github.com/orderflow/orderflow/httpclient"
	"github.com/orderflow/orderflow/risk"
	"github.com/orderflow/orderflow/risk/callbackclient"
	"github.com/orderflow/orderflow/risk/engine"
	"github.com/orderflow/orderflow/risk/rediscounters"
	"github.com/orderflow/orderflow/store/postgres"
	"github.com/orderflow/orderflow/telemetry"
)

// runRiskDist is `orderflow risk`: a risk engine replica. It consumes
// order.created from the Redis streams' consumer group (shared by all
// replicas), keeps velocity counters in Redis and decisions in PostgreSQL,
// and sends each callback through the hash ring of --order-url.
func runRiskDist(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	c, d, log, err := parseDist("risk", args, getenv, stdout)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	urls := splitList(c.OrderURL)
	if len(urls) == 0 {
		return errors.New("risk needs --order-url (comma-separated order replica URLs)")
	}
	secrets, err := callbackSecrets(modeOrder, c.CallbackSecret, log)
	if err != nil {
		return fmt.Errorf("risk: %w", err)
	}
	st, err := postgres.Open(ctx, c.Store)
	if err != nil {
		return fmt.Errorf("store unusable: %w", err)
	}
	defer st.Close()
	rdb, err := openRedis(c.Bus)
	if err != nil {
		return fmt.Errorf("bad flag: -bus: %w", err)
	}
	defer rdb.Close()
	tp, stopTracing, err := setupTracing(ctx, getenv, version())
	if err != nil {
		return err
	}
	otel.SetTracerProvider(tp)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
		defer cancel()
		_ = stopTracing(sctx)
	}()
	telemetry.InstallPropagator()
	metrics := telemetry.New()

	counters, err := rediscounters.New(rediscounters.Config{Client: rdb, Prefix: d.CounterPrefix})
	if err != nil {
		return err
	}
	router, err := risk.NewRouter(rolloutSalt, c.ChallengerSplit)
	if err != nil {
		return fmt.Errorf("bad flag: -challenger-split: %w", err)
	}
	assessor := &risk.Assessor{Counters: counters, Router: router, Champion: risk.V21(), Challenger: risk.V3(), Logger: log}
	bcfg := busConfig(d, log)
	bcfg.Concurrency = c.RiskConcurrency
	// As in serve: an event whose order service is down must wait for it,
	// not be dead-lettered after a minute of back-off.
	bcfg.MaxDeliveries = 60
	bus := redisstream.New(rdb, bcfg)

	hc := httpclient.New(httpclient.Config{Name: "callback", Wrap: []func(http.RoundTripper) http.RoundTripper{
		func(rt http.RoundTripper) http.RoundTripper {
			return otelhttp.NewTransport(rt, otelhttp.WithTracerProvider(tp))
		},
		func(rt http.RoundTripper) http.RoundTripper { return &deadline.Transport{Base: rt} },
	}})
	if err := metrics.Registry.Register(hc.Collector()); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	defer hc.CloseIdleConnections()
	clients := map[string]*callbackclient.Client{}
	for _, u := range urls {
		br := breaker.New(breaker.Config{
			Name: "callback " + u,
			// As in serve (cmd/orderflow/risk.go): trip on latency only when
			// the P95 reaches the attempt timeout; a lower floor opened the
			// breakers of healthy but slow (busy PostgreSQL) replicas here
			// (breaker_open callbacks in docs/benchmarks/cluster.md).
			LatencyFloor: c.CallbackTimeout,
			OnStateChange: func(from, to breaker.State, s breaker.Snapshot) {
				log.Warn("callback breaker", "replica", u, "from", from.String(), "to", to.String(), "snapshot", s)
			},
		})
		cc, err := callbackclient.New(callbackclient.Config{HTTP: hc.Client, BaseURL: u, Secrets: secrets, Breaker: br})
		if err != nil {
			return err
		}
		clients[u] = cc
	}
	sender, err := newRingSender(clients)
	if err != nil {
		return err
	}
	em := engine.NewMetrics()
	if err := em.Register(metrics.Registry); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	eng, err := engine.New(engine.Config{
		Consumer: bus, Assessor: assessor, Decisions: st, Sender: sender,
		Logger: log, TracerProvider: tp, Metrics: em,
		Retry: engine.Retry{Attempt: c.CallbackTimeout},
	})
	if err != nil {
		return err
	}
	ready := map[string]orderflow.Pinger{"store": st, "bus": bus, "counters": counters}
	public := http.NewServeMux()
	public.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	public.Handle("GET /readyz", readyHandler(ready))
	for p, h := range riskapi.Routes(riskapi.Config{Reviewer: eng, Labels: st}) {
		if p == "POST /v1/risk/labels" || p == "POST /v1/risk/reviews" {
			public.Handle(p, h)
		}
	}
	admin := httpapi.NewAdmin(httpapi.AdminConfig{Metrics: metrics, Logger: log, Extra: riskapi.AdminRoutes(riskapi.AdminConfig{DeadLetters: bus})})
	tasks := []func(context.Context){
		func(ctx context.Context) {
			if err := eng.Run(ctx); err != nil {
				log.Error("risk engine stopped", "err", err)
			}
		},
	}
	return serveDist(ctx, c, log, public, admin, tasks, nil)
}

// readyHandler answers /readyz for the risk process: 200 when every
// dependency answers, 503 naming the ones that do not.
func readyHandler(deps map[string]orderflow.Pinger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		checks := map[string]string{}
		status := http.StatusOK
		for name, p := range deps {
			if err := p.Ping(ctx); err != nil {
				checks[name] = "unavailable"
				status = http.StatusServiceUnavailable
			} else {
				checks[name] = "ok"
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		s := "ok"
		if status != http.StatusOK {
			s = "unavailable"
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": s, "checks": checks})
	})
}
