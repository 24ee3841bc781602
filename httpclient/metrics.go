package httpclient

import "github.com/prometheus/client_golang/prometheus"

// Collector exports a client's accounting to Prometheus. The caller
// registers it on its own registry (reg.MustRegister(c.Collector())); the
// package registers nothing globally, so tests and several clients never
// collide. Every metric carries a client label with Config.Name.
//
//	orderflow_http_client_requests_total            round trips started
//	orderflow_http_client_request_errors_total      round trips that returned an error
//	orderflow_http_client_dials_total{result}       TCP dials, result="ok|error"
//	orderflow_http_client_connections_total{reused} connections obtained per request
//	orderflow_http_client_bodies_opened_total       response bodies handed out
//	orderflow_http_client_open_bodies               bodies not yet closed (a leak if it grows)
func (c *Client) Collector() prometheus.Collector {
	labels := prometheus.Labels{"client": c.name}
	return &collector{
		c:        c,
		requests: prometheus.NewDesc("orderflow_http_client_requests_total", "HTTP client round trips started.", nil, labels),
		errors:   prometheus.NewDesc("orderflow_http_client_request_errors_total", "HTTP client round trips that returned an error (no response).", nil, labels),
		dials:    prometheus.NewDesc("orderflow_http_client_dials_total", "TCP connections dialed by the HTTP client, by result.", []string{"result"}, labels),
		conns:    prometheus.NewDesc("orderflow_http_client_connections_total", "Connections obtained for HTTP client requests, by whether they were reused from the idle pool.", []string{"reused"}, labels),
		opened:   prometheus.NewDesc("orderflow_http_client_bodies_opened_total", "HTTP client response bodies handed to callers.", nil, labels),
		open:     prometheus.NewDesc("orderflow_http_client_open_bodies", "HTTP client response bodies handed to callers and not yet closed; a steady rise is a leak.", nil, labels),
	}
}

type collector struct {
	c                                            *Client
	requests, errors, dials, conns, opened, open *prometheus.Desc
}

func (col *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{col.requests, col.errors, col.dials, col.conns, col.opened, col.open} {
		ch <- d
	}
}

func (col *collector) Collect(ch chan<- prometheus.Metric) {
	s := col.c.counters()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(col.requests, s.Requests)
	counter(col.errors, s.Errors)
	counter(col.dials, s.Dials, "ok")
	counter(col.dials, s.DialErrors, "error")
	counter(col.conns, s.ConnsNew, "false")
	counter(col.conns, s.ConnsReused, "true")
	counter(col.opened, s.BodiesOpened)
	ch <- prometheus.MustNewConstMetric(col.open, prometheus.GaugeValue, float64(s.OpenBodies))
}
