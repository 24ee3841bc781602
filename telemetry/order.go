package telemetry

import (
	"github.com/orderflow/orderflow/order"
	"github.com/prometheus/client_golang/prometheus"
)

// OrderStatser is what RegisterOrderService reads: an *order.Service.
type OrderStatser interface {
	Stats() order.Stats
}

// RegisterOrderService exports the order service's own counters:
// orderflow_order_writes_in_flight (creates and callback records running,
// the quantity MaxInFlight caps), orderflow_order_applies_pending (orders
// with an apply queued or running) and orderflow_order_applies_deferred_total
// (applies left to the sweeper because the pool was full: a rising rate means
// the pool is undersized).
func (m *Metrics) RegisterOrderService(s OrderStatser) error {
	return m.Registry.Register(&orderCollector{s: s})
}

var (
	orderInFlight = prometheus.NewDesc("orderflow_order_writes_in_flight",
		"Creates and callback records running now.", nil, nil)
	orderPending = prometheus.NewDesc("orderflow_order_applies_pending",
		"Orders with an apply of recorded callbacks queued or running.", nil, nil)
	orderDeferred = prometheus.NewDesc("orderflow_order_applies_deferred_total",
		"Applies left to the sweeper because the worker pool was full.", nil, nil)
)

type orderCollector struct{ s OrderStatser }

func (c *orderCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- orderInFlight
	ch <- orderPending
	ch <- orderDeferred
}

func (c *orderCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	ch <- prometheus.MustNewConstMetric(orderInFlight, prometheus.GaugeValue, float64(st.InFlight))
	ch <- prometheus.MustNewConstMetric(orderPending, prometheus.GaugeValue, float64(st.Applying))
	ch <- prometheus.MustNewConstMetric(orderDeferred, prometheus.CounterValue, float64(st.Deferred))
}
