package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/store/sqlite"
)

// storeCollector exports the SQLite committer's counters (sqlite.WriteStats):
// writes and commits per decided order are what group commit is judged by
// (docs/benchmarks/pipeline.md).
type storeCollector struct {
	st                                      *sqlite.Store
	writes, commits, failed, rejected, errs *prometheus.Desc
	queued, maxBatch                        *prometheus.Desc
}

func newStoreCollector(st *sqlite.Store) *storeCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("orderflow_sqlite_"+name, help, nil, nil)
	}
	return &storeCollector{
		st:       st,
		writes:   d("writes_total", "Write functions the single writer ran (each in its own savepoint)."),
		commits:  d("commits_total", "COMMITs that succeeded, one fsync each; several writes share one (group commit)."),
		failed:   d("write_errors_total", "Writes that returned an error and were rolled back to their savepoint."),
		rejected: d("writes_rejected_total", "Writes refused because the write queue was full."),
		errs:     d("commit_errors_total", "Batches whose BEGIN, SAVEPOINT or COMMIT failed."),
		queued:   d("write_queue_depth", "Writes waiting for the writer."),
		maxBatch: d("write_batch_max", "The largest number of writes one commit has carried."),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.writes, c.commits, c.failed, c.rejected, c.errs, c.queued, c.maxBatch} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.st.Stats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	counter(c.writes, s.Writes)
	counter(c.commits, s.Commits)
	counter(c.failed, s.Failed)
	counter(c.rejected, s.Rejected)
	counter(c.errs, s.CommitErrors)
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(s.Queued))
	ch <- prometheus.MustNewConstMetric(c.maxBatch, prometheus.GaugeValue, float64(s.MaxBatch))
}
