package chaos

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

type fault int

const (
	faultLatency fault = iota
	faultError
	faultDrop
	numFaults
)

var faultNames = [numFaults]string{"latency", "error", "drop"}

// stats counts injected faults by side and kind; only the fault path
// touches it, so an Injector that is off never writes a shared cache line.
type stats struct {
	n [2][numFaults]atomic.Uint64
}

func sideIndex(s Side) int {
	if s == Client {
		return 1
	}
	return 0
}

func (s *stats) add(side Side, f fault) { s.n[sideIndex(side)][f].Add(1) }

// Injected returns how many faults of a kind ("latency", "error", "drop")
// the injector applied on a side, for tests and the admin view.
func (inj *Injector) Injected(side Side, kind string) uint64 {
	for f, name := range faultNames {
		if name == kind {
			return inj.stats.n[sideIndex(side)][f].Load()
		}
	}
	return 0
}

// Collector exports the injector's activity to Prometheus; the caller
// registers it on its own registry. Dashboards overlay these on latency and
// error graphs, so an injected incident is never mistaken for a real one.
//
//	orderflow_chaos_injected_total{side="server|client",fault="latency|error|drop"}
//	orderflow_chaos_cpu_burn_target_ratio  target share of one core being burned now (0 when off)
func (inj *Injector) Collector() prometheus.Collector {
	return &collector{
		inj:      inj,
		injected: prometheus.NewDesc("orderflow_chaos_injected_total", "Faults injected by chaos, by side and kind.", []string{"side", "fault"}, nil),
		burn:     prometheus.NewDesc("orderflow_chaos_cpu_burn_target_ratio", "Target share of one core that chaos is burning now (0 when off).", nil, nil),
	}
}

type collector struct {
	inj            *Injector
	injected, burn *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.injected
	ch <- c.burn
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, side := range []Side{Server, Client} {
		for f, name := range faultNames {
			v := c.inj.stats.n[sideIndex(side)][f].Load()
			ch <- prometheus.MustNewConstMetric(c.injected, prometheus.CounterValue, float64(v), string(side), name)
		}
	}
	share := 0.0
	if cpu := c.inj.state.Load().settings.CPU; cpu != nil && c.inj.Burning() {
		share = cpu.Share
	}
	ch <- prometheus.MustNewConstMetric(c.burn, prometheus.GaugeValue, share)
}
