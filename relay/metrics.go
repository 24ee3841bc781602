package relay

import "github.com/prometheus/client_golang/prometheus"

// Metrics is what a relay exports. The names are those docs/operations.md
// tells an operator to watch.
type Metrics struct {
	// Leader is 1 while this replica holds the relay lease: across the
	// replicas the sum should be 1 (0 for longer than a TTL is an outage).
	Leader prometheus.Gauge
	// Published counts events copied to the bus and marked.
	Published prometheus.Counter
	// Fenced counts terms the store ended by refusing a stale token.
	Fenced prometheus.Counter
	// Republished counts events the reconciler put back on the work list:
	// non-zero after a bus lost data, or when the risk engine is far behind.
	Republished prometheus.Counter
	// Lag is the time from an event's commit to its publication.
	Lag prometheus.Histogram
}

// NewMetrics returns unregistered metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		Leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orderflow_relay_leader", Help: "1 while this process holds the outbox relay lease.",
		}),
		Published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderflow_relay_published_events_total", Help: "Outbox events published to the bus and marked published.",
		}),
		Fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderflow_relay_fenced_total", Help: "Relay terms ended because the store refused a stale fencing token.",
		}),
		Republished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderflow_relay_republished_events_total", Help: "order.created events of undecided orders put back on the outbox work list.",
		}),
		Lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "orderflow_relay_lag_seconds", Help: "Time from an outbox event's creation to its publication.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
}

// Register adds the metrics to reg.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.Leader, m.Published, m.Fenced, m.Republished, m.Lag} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
