// Package telemetry owns the process's observability plumbing: one Prometheus
// registry (with the Go and process collectors), the metric vectors the HTTP
// layer and the worker pools feed, the slog JSON logger that stamps trace and
// span ids, and the OpenTelemetry propagator setup.
//
// Metric names follow orderflow_<subsystem>_<name>_<unit>, with base units and
// low-cardinality labels only (route patterns, status classes, error codes,
// pool names), so /metrics stays clean under promtool check metrics.
package telemetry

import (
	"time"

	"github.com/orderflow/orderflow"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is the registry and the vectors shared by the transport layer. A
// process builds one with New and hands it to whoever exports or feeds it; the
// vectors are safe for concurrent use.
type Metrics struct {
	// Registry holds every collector below plus the Go and process
	// collectors. It is not the global default registry, so tests can build
	// as many Metrics as they like without "duplicate metrics" panics.
	Registry *prometheus.Registry

	// HTTPRequestDuration is orderflow_http_request_duration_seconds{route,
	// status_class}: route is the ServeMux pattern ("POST /v1/orders"), never
	// a raw path, and status_class is "2xx" … "5xx".
	HTTPRequestDuration *prometheus.HistogramVec

	// Errors is orderflow_errors_total{error_code}: one increment per error
	// response, labelled with the same code the response body carries.
	Errors *prometheus.CounterVec

	// BreakerState is orderflow_breaker_state{breaker}: 0 closed, 1 open,
	// 2 half-open (the values of breaker.State), set by each breaker's
	// OnStateChange hook through SetBreakerState.
	BreakerState *prometheus.GaugeVec

	poolWait *prometheus.HistogramVec
}

// New builds a registry with the Go and process collectors and every metric
// vector of this package registered. The errors counter starts at zero for
// every code, so a rate() over it is defined before the first error.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		HTTPRequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "orderflow",
			Subsystem: "http",
			Name:      "request_duration_seconds",
			Help:      "Time to serve an HTTP request, by route pattern and status class.",
			// From 0.5 ms (a read on a warm cache) to 10 s (beyond every budget).
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"route", "status_class"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderflow_errors_total",
			Help: "Error responses, by the error code of the response body.",
		}, []string{"error_code"}),
		BreakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orderflow_breaker_state",
			Help: "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
		}, []string{"breaker"}),
		poolWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "orderflow",
			Subsystem: "workerpool",
			Name:      "wait_seconds",
			Help:      "Time a task spent queued before a worker picked it up.",
			Buckets:   []float64{0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5},
		}, []string{"pool"}),
	}
	for _, code := range orderflow.Codes {
		m.Errors.WithLabelValues(code)
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.HTTPRequestDuration,
		m.Errors,
		m.BreakerState,
		m.poolWait,
	)
	return m
}

// SetBreakerState records a breaker's state (breaker.State as a number).
// Call it once when the breaker is built, so the series exists while it is
// closed, and from its OnStateChange hook.
func (m *Metrics) SetBreakerState(name string, state float64) {
	m.BreakerState.WithLabelValues(name).Set(state)
}

// PoolWaitObserver returns a function to use as a worker pool's OnWait hook:
// it feeds orderflow_workerpool_wait_seconds{pool}. The pool is built with it
// before RegisterPool can see the pool, hence two calls.
func (m *Metrics) PoolWaitObserver(pool string) func(time.Duration) {
	h := m.poolWait.WithLabelValues(pool)
	return func(d time.Duration) { h.Observe(d.Seconds()) }
}
