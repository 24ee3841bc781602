package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// PoolStats is a snapshot of a worker pool, as workerpool.Pool.Stats reports
// it. It is restated here so that telemetry does not need a pool to exist to
// compile, and any pool-like thing can be exported.
type PoolStats struct {
	Workers, Busy, QueueDepth, QueueCap int64
	Submitted, Completed, Rejected      int64
}

// RegisterPool exports a pool's gauges and counters under pool=<name>:
// orderflow_workerpool_{workers,busy_workers,queue_depth,queue_capacity} and
// orderflow_workerpool_{submitted,completed,rejected}_total. stats is called
// on every scrape, so it must be cheap and safe for concurrent use.
func (m *Metrics) RegisterPool(pool string, stats func() PoolStats) error {
	return m.Registry.Register(&poolCollector{pool: pool, stats: stats})
}

var (
	poolWorkers = prometheus.NewDesc("orderflow_workerpool_workers",
		"Worker goroutines of the pool.", []string{"pool"}, nil)
	poolBusy = prometheus.NewDesc("orderflow_workerpool_busy_workers",
		"Workers running a task right now.", []string{"pool"}, nil)
	poolDepth = prometheus.NewDesc("orderflow_workerpool_queue_depth",
		"Tasks waiting in the queue.", []string{"pool"}, nil)
	poolCap = prometheus.NewDesc("orderflow_workerpool_queue_capacity",
		"Size of the queue; depth at capacity means submissions are refused.", []string{"pool"}, nil)
	poolSubmitted = prometheus.NewDesc("orderflow_workerpool_submitted_total",
		"Tasks accepted into the queue.", []string{"pool"}, nil)
	poolCompleted = prometheus.NewDesc("orderflow_workerpool_completed_total",
		"Tasks that finished running.", []string{"pool"}, nil)
	poolRejected = prometheus.NewDesc("orderflow_workerpool_rejected_total",
		"Submissions refused because the queue was full or the pool closed.", []string{"pool"}, nil)
)

type poolCollector struct {
	pool  string
	stats func() PoolStats
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolWorkers, poolBusy, poolDepth, poolCap, poolSubmitted, poolCompleted, poolRejected} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), c.pool)
	}
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), c.pool)
	}
	gauge(poolWorkers, s.Workers)
	gauge(poolBusy, s.Busy)
	gauge(poolDepth, s.QueueDepth)
	gauge(poolCap, s.QueueCap)
	counter(poolSubmitted, s.Submitted)
	counter(poolCompleted, s.Completed)
	counter(poolRejected, s.Rejected)
}
