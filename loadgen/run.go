package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/risk/synth"
)

// runner is one run's state. The pacer goroutine (Run's own) owns the
// generator; senders, pollers, labelers and the progress printer are owned
// by Run, which waits for every one of them before it returns.
type runner struct {
	cfg     Config
	runID   string
	gen     *synth.Generator
	advSeen map[string]bool
	col     *collector
	c       *client // the order service
	lc      *client // the labels endpoint
	watch   *watchSet
	labels  *labelQueue
}

// newRunner prepares a run of cfg (defaults set) without a client.
func newRunner(cfg Config) *runner {
	var id [6]byte
	_, _ = rand.Read(id[:])
	r := &runner{cfg: cfg, runID: hex.EncodeToString(id[:]), advSeen: map[string]bool{},
		col: newCollector(), watch: newWatchSet(cfg.WatchMax, cfg.Watch == WatchList), labels: newLabelQueue(maxLabelQueue)}
	prefix := cfg.UserPrefix
	if prefix == "" {
		prefix = "lg" + r.runID
	}
	r.gen = synth.New(synth.Config{Seed: cfg.Seed, Users: cfg.Users, UserPrefix: prefix})
	return r
}

// Run sends the synthetic stream of cfg and returns what it measured. It
// returns early, with the summary so far, when ctx ends (an interrupted run
// still reports); the error is for a bad Config only.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	r := newRunner(cfg)
	tr := cfg.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Keep a connection per request in flight: a new handshake per
		// request would measure the kernel, not the server.
		t.MaxIdleConnsPerHost = cfg.Concurrency + 2*cfg.Pollers
		defer t.CloseIdleConnections()
		tr = t
	}
	hc := &http.Client{Transport: tr}
	r.c = &client{base: cfg.URL, token: cfg.APIToken, hc: hc, timeout: cfg.Timeout, col: r.col}
	// Labels have their own back-off gate: the risk engine may be another
	// server, whose 429s say nothing about the order service.
	r.lc = &client{base: cfg.LabelsURL, hc: hc, timeout: cfg.Timeout, col: r.col}

	work, stop := context.WithCancel(ctx)
	defer stop()
	var bg sync.WaitGroup
	for range cfg.Pollers {
		bg.Go(func() { r.poll(work) })
	}
	if cfg.Watch == WatchList {
		bg.Go(func() { r.list(work) })
	}
	for range 2 {
		bg.Go(func() { r.sendLabels(work) })
	}
	if cfg.Progress != nil {
		bg.Go(func() { r.printProgress(work) })
	}

	start := time.Now()
	var senders sync.WaitGroup
	r.pace(ctx, start, &senders)
	paced := time.Since(start)
	senders.Wait()
	sent := time.Since(start)
	r.drain(ctx)
	total := time.Since(start)
	stop()
	bg.Wait()
	if cfg.Progress != nil && cfg.TTY {
		fmt.Fprintln(cfg.Progress)
	}
	return r.col.summary(phases{paced, sent, total}, int64(r.watch.active()), int64(r.labels.len())), nil
}

// slotsDue is how many slots an open-loop pacer at rate has opened after
// elapsed: one at the start, then one every 1/rate.
func slotsDue(elapsed time.Duration, rate float64) int64 {
	return int64(elapsed.Seconds()*rate) + 1
}

// totalSlots is the number of slots of the sending phase, or MaxInt64
// for a run that ends with ctx.
func (r *runner) totalSlots() int64 {
	n := int64(math.MaxInt64)
	if d := r.cfg.Duration; d > 0 {
		n = int64(math.Ceil(d.Seconds() * r.cfg.Rate))
	}
	if r.cfg.Orders > 0 {
		n = min(n, r.cfg.Orders)
	}
	return n
}

// pace opens slots at the configured rate on the wall clock, whatever the
// server does (open loop): a slot is sent if fewer than Concurrency creates
// are in flight and dropped otherwise. A pacer that fell behind (a stalled
// machine) opens the missed slots at once rather than stretching the run.
func (r *runner) pace(ctx context.Context, start time.Time, senders *sync.WaitGroup) {
	sem := make(chan struct{}, r.cfg.Concurrency)
	total := r.totalSlots()
	var issued int64
	for issued < total {
		due := min(slotsDue(time.Since(start), r.cfg.Rate), total)
		for ; issued < due; issued++ {
			r.col.offered.Add(1)
			select {
			case sem <- struct{}{}:
				r.col.sent.Add(1)
				o, adv := r.next()
				senders.Go(func() {
					defer func() { <-sem }()
					r.create(ctx, o, adv)
				})
			default:
				r.col.dropped.Add(1)
			}
		}
		if issued >= total {
			return
		}
		next := start.Add(time.Duration(float64(issued) / r.cfg.Rate * float64(time.Second)))
		if !pause(ctx, nil, max(time.Until(next), 0)) {
			return
		}
	}
}

// next returns the stream's next order. The first order of an
// adversarial-retry user starts an interactive adversary (synth.Adversary)
// that retries only while it is not approved; the stream's scripted retries
// of that user are skipped in its favour.
func (r *runner) next() (synth.Order, *advState) {
	for {
		o := r.gen.Next()
		if o.Pattern != synth.Adversarial {
			return o, nil
		}
		if r.advSeen[o.UserID] {
			continue
		}
		r.advSeen[o.UserID] = true
		a := &advState{a: synth.NewAdversary(r.cfg.Seed^uint64(o.Seq), o.UserID, o.AmountMinor, o.CreatedAt),
			region: o.Region, currency: o.Currency}
		r.col.adversary(func(s *AdversarySummary) { s.Users++ })
		return a.attempt(r.col), a
	}
}

// advState is one interactive adversary.
type advState struct {
	a     *synth.Adversary
	tries int
	// region and currency are the stream's for this user. synth.Adversary
	// places every attempt in east-china in CNY, but the amount it starts
	// from is in the stream user's currency; keeping both from the stream
	// keeps the amount meaning what the generator drew.
	region, currency string
}

func (a *advState) attempt(col *collector) synth.Order {
	a.tries++
	col.adversary(func(s *AdversarySummary) { s.Attempts++ })
	o := a.a.Attempt()
	o.Region, o.Currency = a.region, a.currency
	return o
}

// create posts o under an Idempotency-Key unique to this run and order, and
// starts watching the order it gets back.
func (r *runner) create(ctx context.Context, o synth.Order, adv *advState) {
	key := r.runID + "-" + o.ID
	req := o.NewOrder()
	t0 := time.Now()
	a, err := r.c.postJSON(ctx, "create", "/v1/orders", &req, key)
	var got orderflow.Order
	if err == nil && a.ok() {
		if err = json.Unmarshal(a.body, &got); err == nil && got.ID == "" {
			err = errNoOrder
		}
		if err != nil {
			r.col.errorf("create", codeBadAnswer)
		}
	}
	ok := err == nil && a.ok()
	r.col.createDone(ok, time.Since(t0))
	if !ok {
		// An adversary whose order failed cannot tell what happened: it
		// stops, neither approved nor given up (counted as unfinished).
		return
	}
	now := time.Now()
	first := time.Duration(r.col.firstPoll.Load())
	if r.cfg.Watch == WatchList {
		// The lister should see it decided first; a poll is the fallback
		// for an order the pages did not reach.
		first = (listDepth + 1) * r.cfg.ListEvery
	}
	w := &watched{id: got.ID, fraud: o.Fraud, created: now, next: now.Add(first), adv: adv,
		serverCreated: got.CreatedAt, index: -1}
	if decided(&got) {
		r.decided(ctx, w, &got, now)
		return
	}
	if !r.watch.add(w) {
		r.col.unwatch()
		r.queueLabel(w, now)
	}
}

func decided(o *orderflow.Order) bool {
	return o.Status != orderflow.StatusPendingReview || o.Risk != nil
}

// poll takes due orders from the watch set and looks at them until ctx ends.
func (r *runner) poll(ctx context.Context) {
	for {
		w := r.watch.take(ctx)
		if w == nil {
			return
		}
		r.col.polls.Add(1)
		a, err := r.c.do(ctx, "poll", http.MethodGet, "/v1/orders/"+w.id, nil, "")
		var o orderflow.Order
		if err == nil && a.ok() {
			if json.Unmarshal(a.body, &o) != nil {
				r.col.errorf("poll", codeBadAnswer)
			} else if decided(&o) {
				if r.watch.claim(w) {
					r.decided(ctx, w, &o, time.Now())
				}
				r.watch.done()
				continue
			}
		}
		now := time.Now()
		w.next = now.Add(pollInterval(now.Sub(w.created)))
		r.watch.put(w)
	}
}

// decided counts an order seen decided, queues its label and, for an
// adversary that was not approved, sends the next attempt.
func (r *runner) decided(ctx context.Context, w *watched, o *orderflow.Order, now time.Time) {
	r.col.decidedOrder(o, w.fraud, now.Sub(w.created))
	r.queueLabel(w, now)
	if w.adv == nil {
		return
	}
	switch {
	case o.Status == orderflow.StatusApproved || o.Status == orderflow.StatusFulfilled:
		retried := w.adv.tries > 1
		r.col.adversary(func(s *AdversarySummary) {
			s.Approved++
			if retried {
				s.ApprovedAfterRetry++
			}
		})
	case w.adv.tries >= r.cfg.AdversaryTries:
		r.col.adversary(func(s *AdversarySummary) { s.GaveUp++ })
	case ctx.Err() == nil:
		r.create(ctx, w.adv.attempt(r.col), w.adv)
	}
}

func (r *runner) queueLabel(w *watched, now time.Time) {
	if r.cfg.LabelDelay < 0 {
		return
	}
	if !r.labels.push(label{orderID: w.id, fraud: w.fraud, due: now.Add(r.cfg.LabelDelay)}) {
		r.col.label(func(s *LabelSummary) { s.Skipped++ })
	}
}

// sendLabels posts due labels until ctx ends.
func (r *runner) sendLabels(ctx context.Context) {
	type body struct {
		OrderID string `json:"order_id"`
		Fraud   bool   `json:"fraud"`
	}
	for {
		l := r.labels.pop(ctx)
		if l == nil {
			return
		}
		a, err := r.lc.postJSON(ctx, "label", "/v1/risk/labels", body{l.orderID, l.fraud}, "")
		r.col.label(func(s *LabelSummary) {
			switch {
			case err != nil:
				// The run ended under it: the server may or may not have
				// it, so it is counted as not sent.
				s.Pending++
			case a.ok():
				s.Sent++
			default:
				s.Failed++
			}
		})
		r.labels.done()
	}
}

// drain waits, up to Drain, for the watched orders to be decided and their
// labels sent. It polls two counters every few milliseconds: cheap, and
// simpler than a signal from every place that changes them.
func (r *runner) drain(ctx context.Context) {
	deadline := time.Now().Add(r.cfg.Drain)
	for r.watch.active() > 0 || r.labels.len() > 0 {
		if time.Now().After(deadline) || !pause(ctx, nil, 5*time.Millisecond) {
			return
		}
	}
}
