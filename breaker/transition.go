package breaker

import "time"

// trip opens a closed breaker; a breaker that already left Closed (another
// goroutine tripped it first) is left alone.
func (b *Breaker) trip(now int64, r Reason) {
	b.mu.Lock()
	if State(b.state.Load()) == Closed {
		b.toOpenLocked(now, r)
	}
	b.mu.Unlock()
	b.flush()
}

// probeDone applies a probe's outcome, unless the breaker has moved on since
// the probe was admitted (its generation is stale).
func (b *Breaker) probeDone(gen uint32, o Outcome, latency time.Duration) {
	now := b.now()
	b.mu.Lock()
	if gen == b.gen && State(b.state.Load()) == HalfOpen {
		switch {
		case o == Ignored:
			b.probesLeft.Add(1) // says nothing: let another call probe
		case o == Failure:
			b.toOpenLocked(now, ReasonProbeFailed)
		case latency >= b.thresholdLocked():
			// A slow success would only re-trip the latency rule once
			// closed: the dependency must look healthy by both signals.
			b.toOpenLocked(now, ReasonProbeFailed)
		default:
			b.probesOK++
			if b.probesOK >= b.cfg.Probes {
				b.toClosedLocked(now)
			}
		}
	}
	b.mu.Unlock()
	b.flush()
}

func (b *Breaker) toOpenLocked(now int64, r Reason) {
	from := State(b.state.Load())
	if from == Closed {
		b.frozen = b.snapshotLocked()
	}
	b.opens++
	d := b.cfg.MinOpen
	for i := 1; i < b.opens && d < b.cfg.MaxOpen; i++ {
		d *= 2
	}
	d = min(time.Duration(float64(min(d, b.cfg.MaxOpen))*(1+b.cfg.Jitter*b.random())), b.cfg.MaxOpen)
	b.openFor = d
	b.openUntil.Store(now + int64(d))
	b.setLocked(from, Open, r)
}

func (b *Breaker) toHalfOpenLocked(now int64) {
	b.probesOK = 0
	b.probesLeft.Store(int64(b.cfg.Probes))
	b.probeDeadline.Store(now + int64(b.cfg.ProbeTimeout))
	b.setLocked(Open, HalfOpen, ReasonBackoffElapsed)
}

func (b *Breaker) toClosedLocked(now int64) {
	b.opens = 0
	b.resetWindowLocked(now)
	b.setLocked(HalfOpen, Closed, ReasonProbesSucceeded)
}

// resetWindowLocked starts an empty window: what the breaker saw before it
// opened says nothing about the dependency that the probes just vouched for.
func (b *Breaker) resetWindowLocked(now int64) {
	for i := range b.slots {
		b.slots[i].reset(-1<<62, 0)
	}
	ep := now / b.bucketNanos
	s := &b.slots[ep%int64(len(b.slots))]
	s.reset(ep, (ep+1)*b.bucketNanos)
	b.cur.Store(s)
	b.past.reset()
	b.consec.Store(0)
	b.nextEval.Store(now + b.evalNanos)
}

func (b *Breaker) setLocked(from, to State, r Reason) {
	b.gen++
	b.reason = r
	b.state.Store(uint32(to))
	if b.cfg.OnStateChange != nil {
		b.pending = append(b.pending, change{from: from, to: to, snap: b.snapshotLocked()})
	}
}

// flush delivers queued transitions to OnStateChange in order, one at a time,
// outside mu. Whoever holds notifyMu drains the queue; a goroutine that finds
// it held leaves its changes to the holder, which looks again after letting
// go so that none is stranded.
func (b *Breaker) flush() {
	if b.cfg.OnStateChange == nil {
		return
	}
	for {
		if !b.notifyMu.TryLock() {
			return
		}
		for {
			b.mu.Lock()
			batch := b.pending
			b.pending = nil
			b.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, c := range batch {
				b.cfg.OnStateChange(c.from, c.to, c.snap)
			}
		}
		b.notifyMu.Unlock()
		b.mu.Lock()
		more := len(b.pending) > 0
		b.mu.Unlock()
		if !more {
			return
		}
	}
}
