package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/breaker"
	"github.com/orderflow/orderflow/bus/sqlbus"
	"github.com/orderflow/orderflow/deadline"
	"github.com/orderflow/orderflow/httpclient"
	"github.com/orderflow/orderflow/risk"
	"github.com/orderflow/orderflow/risk/callbackclient"
	"github.com/orderflow/orderflow/risk/engine"
)

// rolloutSalt keys the sticky router: a new salt reshuffles every user
// between the versions, so it changes only with a new experiment.
const rolloutSalt = "orderflow-rollout-1"

// riskParts is what the risk engine of serve is made of.
type riskParts struct {
	bus      *sqlbus.Bus
	engine   *engine.Engine
	router   *risk.Router
	assessor *risk.Assessor
	client   *httpclient.Client
	breaker  *breaker.Breaker
	rollout  *engine.Rollout
}

// buildRisk wires the risk engine of serve: the SQL bus over the order
// store's outbox, the assessor (v2.1 champion, v3 challenger at the
// configured split), the decision store in the same SQLite file, and the
// callback client that posts to this process's own public listener over
// real loopback HTTP, the same code path as the distributed mode.
func (a *app) buildRisk(publicAddr string) (*riskParts, error) {
	router, err := risk.NewRouter(rolloutSalt, a.cfg.ChallengerSplit)
	if err != nil {
		return nil, fmt.Errorf("bad flag: -challenger-split: %w", err)
	}
	assessor := &risk.Assessor{
		Counters:   risk.NewMemoryCounters(risk.MemoryConfig{}),
		Router:     router,
		Champion:   risk.V21(),
		Challenger: risk.V3(),
		Logger:     a.log,
	}
	grace := min(2*time.Second, a.cfg.ShutdownTimeout/3)
	// MaxDeliveries is high on purpose: the engine fails a delivery when the
	// order service is down or its breaker is open, and such an event must
	// wait for the service, not be dead-lettered after 20 s of back-off
	// (at the 5 s back-off cap, 60 failures are about 5 minutes).
	bus := sqlbus.New(a.store, sqlbus.Config{
		Logger: a.log, ShutdownGrace: grace, MaxDeliveries: 60,
		// One SQLite writer serves the order service and the engine alike,
		// and a handler spends most of its time waiting for its two commits
		// (--risk-concurrency's comment says how many handlers that takes).
		Concurrency: a.cfg.RiskConcurrency,
	})

	br := breaker.New(breaker.Config{
		Name: "callback",
		// The callback answers after a durable commit (fsync) of the order
		// store, and under load its P95 rises with the commit queue while
		// every call still succeeds. Opening then only sends events back to
		// the bus's back-off (seconds) and the decided rate collapses (seen
		// in docs/benchmarks/pipeline.md with a floor of half the timeout).
		// Trip on latency only when the P95 reaches the attempt timeout,
		// where calls start failing anyway; errors trip it as usual.
		LatencyFloor: a.cfg.CallbackTimeout,
		DryRun:       a.breakerDryRun,
		OnStateChange: func(from, to breaker.State, s breaker.Snapshot) {
			a.log.Warn("callback breaker", "from", from.String(), "to", to.String(), "snapshot", s)
			a.metrics.SetBreakerState("callback", float64(to))
		},
	})
	a.metrics.SetBreakerState("callback", float64(br.State()))
	wrap := []func(http.RoundTripper) http.RoundTripper{
		newTracedTransport,
		func(rt http.RoundTripper) http.RoundTripper { return &deadline.Transport{Base: rt} },
		a.chaos.Transport,
	}
	if a.wrapCallbackTransport != nil {
		wrap = append(wrap, a.wrapCallbackTransport)
	}
	// A warm connection for every handler that may be sending at once, so
	// a burst does not dial and drop connections beyond the default 64.
	hc := httpclient.New(httpclient.Config{Name: "callback", Wrap: wrap,
		MaxIdleConnsPerHost: max(httpclient.DefaultMaxIdleConnsPerHost, a.cfg.RiskConcurrency)})
	if err := a.metrics.Registry.Register(hc.Collector()); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	cc, err := callbackclient.New(callbackclient.Config{
		HTTP: hc.Client, BaseURL: "http://" + loopback(publicAddr), Secrets: a.secrets, Breaker: br,
	})
	if err != nil {
		return nil, err
	}
	var consumer orderflow.Consumer = bus
	if a.wrapConsumer != nil {
		consumer = a.wrapConsumer(consumer)
	}
	em := engine.NewMetrics()
	if err := em.Register(a.metrics.Registry); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	eng, err := engine.New(engine.Config{
		Consumer: consumer, Assessor: assessor, Decisions: a.store, Sender: cc,
		Logger: a.log, TracerProvider: a.tracerProvider(), Metrics: em,
		Retry: engine.Retry{Attempt: a.cfg.CallbackTimeout},
	})
	if err != nil {
		return nil, err
	}
	a.engineMetrics = em
	return &riskParts{bus: bus, engine: eng, router: router, assessor: assessor, client: hc, breaker: br}, nil
}

// loopback turns a listener address into one this process can dial: a
// wildcard host (":8080", "[::]:8080", "0.0.0.0:8080") becomes 127.0.0.1.
func loopback(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// riskTasks are the risk engine's long-running loops, owned by serve: the
// engine's consumer and review senders, and the outbox pruner.
func (a *app) riskTasks(r *riskParts) []func(context.Context) {
	return []func(context.Context){
		func(ctx context.Context) {
			if err := r.engine.Run(ctx); err != nil {
				a.log.Error("risk engine stopped", "err", err)
			}
		},
		func(ctx context.Context) {
			_ = r.bus.RunPruner(ctx, a.cfg.PruneInterval, a.cfg.OutboxRetention)
		},
	}
}
