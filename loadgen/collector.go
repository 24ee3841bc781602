package loadgen

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow"
)

// maxModels bounds how many model versions are measured apart; a server
// that invents versions cannot grow the client's memory. The rest are
// counted under "other".
const maxModels = 32

// firstPollEvery is how many decisions pass between updates of the first
// poll delay: often enough to follow a server that slows down, rarely
// enough that scanning the histogram costs nothing.
const firstPollEvery = 64

// collector holds what the run measured. Counters the pacer bumps on every
// slot are atomic; the rest sit behind one mutex, taken once per event.
type collector struct {
	offered, sent, dropped atomic.Int64
	retries, polls, lists  atomic.Int64
	// firstPoll is how long after its creation an order is first polled,
	// in nanoseconds: half the median observed decision latency so far,
	// refreshed every firstPollEvery decisions. Polling earlier than
	// most decisions can arrive only costs the server requests.
	firstPoll atomic.Int64

	mu          sync.Mutex
	created     int64
	failed      int64
	decided     int64
	unwatched   int64
	createLat   histogram
	decideLat   histogram
	observedLat histogram
	outcomes    map[string]int64
	errors      map[string]map[string]int64
	models      map[string]*modelStats
	labels      LabelSummary
	adversaries AdversarySummary
}

func newCollector() *collector {
	c := &collector{
		outcomes: map[string]int64{},
		errors:   map[string]map[string]int64{},
		models:   map[string]*modelStats{},
	}
	c.firstPoll.Store(int64(minPoll))
	return c
}

func (c *collector) retry() { c.retries.Add(1) }

func (c *collector) errorf(op, code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.errors[op]
	if m == nil {
		m = map[string]int64{}
		c.errors[op] = m
	}
	m[code]++
}

// createDone counts one create and its round trip.
func (c *collector) createDone(ok bool, rtt time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ok {
		c.created++
		c.createLat.record(rtt)
	} else {
		c.failed++
	}
}

func (c *collector) unwatch() {
	c.mu.Lock()
	c.unwatched++
	c.mu.Unlock()
}

// decidedOrder counts an order first seen decided: its outcome, its
// latencies, and its model's verdict against the truth.
func (c *collector) decidedOrder(o *orderflow.Order, fraud bool, observed time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.decided++
	c.outcomes[string(o.Status)]++
	c.observedLat.record(observed)
	if c.decided%firstPollEvery == 0 {
		c.firstPoll.Store(int64(min(max(c.observedLat.quantile(0.5)/2, minPoll), maxPoll)))
	}
	// Version 2 means the decision is the only change the order has seen,
	// so updated_at is when it was applied. A later change (a review, a
	// cancel) would move updated_at; such orders get no server latency.
	if o.Version == 2 && !o.CreatedAt.IsZero() {
		c.decideLat.record(o.UpdatedAt.Sub(o.CreatedAt))
	}
	if o.Risk == nil {
		return
	}
	v := o.Risk.ModelVersion
	m := c.models[v]
	if m == nil {
		if len(c.models) >= maxModels {
			v = "other"
		}
		if m = c.models[v]; m == nil {
			m = newModelStats()
			c.models[v] = m
		}
	}
	m.add(o.Risk.Score, o.Risk.Decision == orderflow.DecisionApprove, fraud)
}

func (c *collector) label(f func(*LabelSummary)) {
	c.mu.Lock()
	f(&c.labels)
	c.mu.Unlock()
}

func (c *collector) adversary(f func(*AdversarySummary)) {
	c.mu.Lock()
	f(&c.adversaries)
	c.mu.Unlock()
}

// progress is the little a progress line shows.
type progress struct {
	sent, dropped, created, failed, decided, errors int64
	p99                                             time.Duration
}

func (c *collector) progress() progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := progress{
		sent: c.sent.Load(), dropped: c.dropped.Load(),
		created: c.created, failed: c.failed, decided: c.decided,
		p99: c.observedLat.quantile(0.99),
	}
	for _, m := range c.errors {
		for _, n := range m {
			p.errors += n
		}
	}
	return p
}

// phases are the run's lengths, each from its start: until the pacer
// stopped, until the last create answered, until the drain ended.
type phases struct{ paced, sending, total time.Duration }

// summary builds the Summary.
func (c *collector) summary(p phases, undecided, labelsPending int64) *Summary {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &Summary{
		PacedSeconds: p.paced.Seconds(),
		Seconds:      p.sending.Seconds(),
		DrainSeconds: (p.total - p.sending).Seconds(),
		Offered:      c.offered.Load(), Sent: c.sent.Load(), Dropped: c.dropped.Load(),
		Created: c.created, Failed: c.failed,
		Decided: c.decided, Undecided: undecided, Unwatched: c.unwatched,
		Polls: c.polls.Load(), Lists: c.lists.Load(), Retries: c.retries.Load(),
		CreateLatency:   latencyOf(&c.createLat),
		DecideLatency:   latencyOf(&c.decideLat),
		ObservedLatency: latencyOf(&c.observedLat),
		Outcomes:        map[string]int64{},
		Errors:          map[string]map[string]int64{},
		Models:          map[string]ModelSummary{},
		Labels:          c.labels,
		Adversaries:     c.adversaries,
	}
	if p.paced > 0 {
		s.OfferedRate = float64(s.Offered) / p.paced.Seconds()
	}
	if p.sending > 0 {
		s.AchievedRate = float64(s.Created) / p.sending.Seconds()
	}
	if p.total > 0 {
		s.DecidedRate = float64(s.Decided) / p.total.Seconds()
	}
	for k, v := range c.outcomes {
		s.Outcomes[k] = v
	}
	for op, m := range c.errors {
		cp := map[string]int64{}
		for k, v := range m {
			cp[k] = v
		}
		s.Errors[op] = cp
	}
	for v, m := range c.models {
		s.Models[v] = ModelSummary{Decided: m.decided, Fraud: m.fraud, Accuracy: m.accuracy(), AUC: m.auc()}
	}
	s.Labels.Pending += labelsPending
	a := &s.Adversaries
	a.Unfinished = a.Users - a.Approved - a.GaveUp
	return s
}
