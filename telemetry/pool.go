package telemetry

import (
	"github.com/orderflow/orderflow/workerpool"
	"github.com/prometheus/client_golang/prometheus"
)

// PoolStatser is what RegisterPool reads: a *workerpool.Pool, or anything
// that reports the same snapshot.
type PoolStatser interface {
	Stats() workerpool.Stats
}

// RegisterPool exports a pool's gauges and counters under pool=<name>:
// orderflow_workerpool_{workers,busy_workers,queue_depth,queue_capacity} and
// orderflow_workerpool_{submitted,completed,rejected,panics}_total. Stats is
// read on every scrape (the pool's counters are atomics, so that is cheap).
// Pair it with PoolWaitObserver as the pool's Config.OnWait.
func (m *Metrics) RegisterPool(pool string, p PoolStatser) error {
	return m.Registry.Register(&poolCollector{pool: pool, p: p})
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
		"Submissions refused because the queue was full (or a blocking submit gave up).", []string{"pool"}, nil)
	poolPanics = prometheus.NewDesc("orderflow_workerpool_panics_total",
		"Tasks that panicked (recovered by the pool).", []string{"pool"}, nil)
)

type poolCollector struct {
	pool string
	p    PoolStatser
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolWorkers, poolBusy, poolDepth, poolCap, poolSubmitted, poolCompleted, poolRejected, poolPanics} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.p.Stats()
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
	counter(poolPanics, s.Panics)
}
