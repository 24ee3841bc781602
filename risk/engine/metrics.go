package engine

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metrics are the engine's Prometheus collectors. Build them with NewMetrics,
// register them once with Register, and pass them in Config.Metrics.
type Metrics struct {
	decisions       *prometheus.CounterVec
	callbacks       *prometheus.CounterVec
	outcomes        *prometheus.CounterVec
	retries         prometheus.Counter
	reviewsUnsent   prometheus.Counter
	handleSeconds   prometheus.Histogram
	pipelineSeconds prometheus.Histogram
}

// NewMetrics builds the collectors, unregistered.
func NewMetrics() *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "orderflow", Subsystem: "risk", Name: "decisions_total",
			Help: "New risk decisions stored, by model version and decision (redeliveries not counted).",
		}, []string{"model", "decision"}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "orderflow", Subsystem: "risk", Name: "callbacks_total",
			Help: "Callback attempts, by result: delivered, duplicate, retry, permanent, conflict, breaker_open.",
		}, []string{"result"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "orderflow", Subsystem: "risk", Name: "events_rejected_total",
			Help: "Events the engine could not process at all, by reason.",
		}, []string{"reason"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "orderflow", Subsystem: "risk", Name: "callback_retries_total",
			Help: "Back-offs taken before retrying a callback inside one delivery.",
		}),
		reviewsUnsent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "orderflow", Subsystem: "risk", Name: "reviews_unsent_total",
			Help: "Manual reviews stored but not delivered within their retry budget.",
		}),
		handleSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "orderflow", Subsystem: "risk", Name: "handle_duration_seconds",
			Help:    "Time to handle one order.created delivery: score, store, send.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15},
		}),
		pipelineSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "orderflow", Subsystem: "risk", Name: "pipeline_duration_seconds",
			Help:    "Time from an order's event creation to its decision's 2xx callback.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
	}
	for _, r := range []string{"delivered", "duplicate", "retry", "permanent", "conflict", "breaker_open"} {
		m.callbacks.WithLabelValues(r)
	}
	return m
}

// Register adds the collectors to reg.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.decisions, m.callbacks, m.outcomes, m.retries,
		m.reviewsUnsent, m.handleSeconds, m.pipelineSeconds} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// CallbackCount returns the callback attempts counted under result (see
// orderflow_risk_callbacks_total): reconciliation and tests read it.
func (m *Metrics) CallbackCount(result string) float64 {
	var d dto.Metric
	if err := m.callbacks.WithLabelValues(result).Write(&d); err != nil {
		return 0
	}
	return d.GetCounter().GetValue()
}

func (m *Metrics) outcome(reason string) { m.outcomes.WithLabelValues(reason).Inc() }
