package breaker

import "time"

// sampleEvery is how often (in calls landing in the same histogram bucket) a
// fast success reads the clock. A power of two.
const sampleEvery = 8

// tick rotates the window when the current bucket has ended and evaluates it
// when an evaluation is due.
func (b *Breaker) tick(s *slot, now int64) {
	if now >= s.end.Load() {
		b.rotate(now)
	}
	if next := b.nextEval.Load(); now >= next && b.nextEval.CompareAndSwap(next, now+b.evalNanos) {
		b.evaluate(now)
	}
}

// rotate starts the bucket that holds now, once, whoever gets there first.
func (b *Breaker) rotate(now int64) *slot {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rotateLocked(now)
}

func (b *Breaker) rotateLocked(now int64) *slot {
	s := b.cur.Load()
	if now < s.end.Load() {
		return s
	}
	ep := now / b.bucketNanos
	n := int64(len(b.slots))
	ns := &b.slots[ep%n]
	ns.reset(ep, (ep+1)*b.bucketNanos)
	b.cur.Store(ns)
	b.past.reset()
	var last *slot // the bucket just before ns, if it is in the window
	for i := range b.slots {
		if o := &b.slots[i]; o != ns && o.epoch > ep-n && o.epoch < ep {
			b.past.add(o)
			if o.epoch == ep-1 {
				last = o
			}
		}
	}
	b.prev = last
	if State(b.state.Load()) == Closed {
		b.learnLocked(last)
	}
	return ns
}

// learnLocked feeds the baseline with the P95 of the bucket that just ended,
// if that bucket was healthy: enough calls (a tenth of MinVolume per bucket,
// at least 10), an error rate under half the trip point, and a P95 under the
// current threshold. Whole buckets, not the sliding window, are the samples,
// so that each second counts once and a degraded second is refused on its
// own merits instead of being diluted by nine healthy ones: a degraded
// dependency never teaches the breaker that degraded is normal.
func (b *Breaker) learnLocked(last *slot) {
	if last == nil {
		return
	}
	c := &b.scratch
	c.reset()
	c.add(last)
	minVol := max(uint64(b.cfg.MinVolume/b.cfg.Buckets), 10)
	if c.total < minVol || float64(c.fail) >= float64(c.total)*b.cfg.ErrorRate/2 {
		return
	}
	p95 := c.quantile(0.95)
	if p95 >= b.thresholdLocked() {
		return
	}
	if b.baseline == 0 {
		b.baseline = p95
		return
	}
	b.baseline = time.Duration(baselineWeight*float64(p95) + (1-baselineWeight)*float64(b.baseline))
}

func (b *Breaker) thresholdLocked() time.Duration {
	th := max(b.cfg.LatencyFloor, time.Duration(b.cfg.LatencyMultiplier*float64(b.baseline)))
	if b.cfg.LatencyCeiling > 0 {
		th = min(th, b.cfg.LatencyCeiling)
	}
	return th
}

// windowLocked merges the window (full buckets plus the current one) into
// b.scratch.
func (b *Breaker) windowLocked() *counts {
	b.scratch = b.past
	b.scratch.add(b.cur.Load())
	return &b.scratch
}

// evaluate applies the error-rate and latency rules to the window, and the
// error-rate rule also to two short windows — the current bucket alone, and
// with the last full bucket (so a fault that starts just after a rotation is
// seen as soon as MinVolume calls): behind ten seconds of healthy history a
// 60% brownout would need eight seconds to move the full window past 50%,
// while a short window sees it within MinVolume calls. Every rule needs
// MinVolume calls in the window it looks at.
func (b *Breaker) evaluate(now int64) {
	b.mu.Lock()
	if State(b.state.Load()) == Closed {
		minVol := uint64(b.cfg.MinVolume)
		failing := func(total, fail uint64) bool {
			return total >= minVol && float64(fail) >= b.cfg.ErrorRate*float64(total)
		}
		w := b.windowLocked()
		cur, curFail := volume(b.cur.Load())
		prev, prevFail := volume(b.prev)
		switch {
		case failing(w.total, w.fail), failing(cur, curFail), failing(cur+prev, curFail+prevFail):
			b.toOpenLocked(now, ReasonErrorRate)
		case w.total >= minVol && w.quantile(0.95) >= b.thresholdLocked():
			b.toOpenLocked(now, ReasonLatency)
		}
	}
	b.mu.Unlock()
	b.flush()
}

// volume returns the calls and failures counted in s (0, 0 for nil).
func volume(s *slot) (total, fail uint64) {
	if s == nil {
		return 0, 0
	}
	for i := range s.hist {
		total += s.hist[i].Load()
	}
	return total, s.fail.Load()
}
