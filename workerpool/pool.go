// Package workerpool runs tasks on a fixed set of goroutines fed by a bounded
// queue, so that load turns into back-pressure (a blocked or refused Submit)
// instead of an unbounded number of goroutines.
//
// The pool owns its workers: New starts them, Close stops them. Tasks receive
// the pool's context, which is cancelled only when a Close runs out of time (and
// once the last worker has exited, when no task is left to see it), so a task
// can tell "the pool is being torn down, give up" from "keep working".
//
// Guarantees, in short:
//   - Every accepted task (Submit or TrySubmit returned nil) is called exactly
//     once, even during Close; if Close's context ended first, it is called with
//     an already cancelled context so it can clean up quickly.
//   - A task that calls Submit on its own pool (passing its context) while the
//     queue is full, or while Close drains the pool, never waits and is never
//     refused: it runs the new task itself (caller-runs), because waiting for a
//     worker while occupying one is how pools deadlock.
//   - A panicking task does not kill its worker: the panic is recovered,
//     counted in Stats.Panics and handed to Config.OnPanic.
//
// The hot path (a Submit that finds room, a worker running a task) takes no
// lock besides the channel's own: counters are atomics, and the ones workers
// write live in per-worker, cache-line padded slots so 64 workers do not
// fight over one line. docs/benchmarks/workerpool.md has the measurements.
package workerpool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Sentinel errors that callers test for with errors.Is.
var (
	// ErrFull is returned by TrySubmit when the queue has no room.
	ErrFull = errors.New("workerpool: queue full")
	// ErrClosed is returned by Submit and TrySubmit once Close has been called
	// (except for the nested Submit of a running task, see Submit).
	ErrClosed = errors.New("workerpool: closed")
)

// DefaultQueueSize is the queue capacity used when Config.QueueSize is zero or
// negative: enough to absorb a burst of a few milliseconds of requests without
// letting a backlog grow into seconds of latency.
const DefaultQueueSize = 1024

// DefaultWorkersPerCPU multiplies GOMAXPROCS to give the default worker count.
// Tasks in this service mostly wait on SQL, HTTP or fsync, so a few workers per
// CPU keep the CPUs busy while some wait; pure CPU work should set Workers to
// runtime.GOMAXPROCS(0).
const DefaultWorkersPerCPU = 4

// Config describes a pool. The zero value is valid.
type Config struct {
	// Workers is the number of goroutines running tasks. Zero or negative
	// means DefaultWorkersPerCPU * runtime.GOMAXPROCS(0).
	Workers int
	// QueueSize bounds the number of accepted tasks waiting for a worker.
	// Zero or negative means DefaultQueueSize.
	QueueSize int
	// OnWait, when set, is called by the worker with each task's time in the
	// queue, just before the task runs (typically to feed a histogram). It
	// costs two clock reads per task, so it is only paid for when set. It must
	// be cheap, safe for concurrent use, and must not panic (it runs outside
	// the task's recovery).
	OnWait func(time.Duration)
	// OnPanic, when set, is called with the value recovered from a panicking
	// task, on the goroutine that ran it. It must be safe for concurrent use.
	OnPanic func(recovered any)
}

// Stats is a snapshot of a pool's counters. Counters are read one by one
// without stopping the pool, so under load the fields may be skewed by the
// tasks that moved in between reads; at rest they are exact. Submitted,
// Completed, Rejected, Panics and CallerRuns never decrease from one call to
// the next, so they can be exported as counters.
type Stats struct {
	Workers    int64 // goroutines started by New
	Busy       int64 // workers running a task right now
	QueueDepth int64 // accepted tasks waiting for a worker
	QueueCap   int64 // capacity of the queue
	Submitted  int64 // tasks accepted (including those run by their caller)
	Completed  int64 // tasks that returned or panicked
	Rejected   int64 // TrySubmit found the queue full, or Submit's ctx ended while waiting
	Panics     int64 // tasks that panicked (also counted in Completed)
	CallerRuns int64 // nested Submits that found the queue full and ran inline
}

// item is what travels through the queue. enq is only set when OnWait is, so
// the common path never reads the clock.
type item struct {
	fn  func(context.Context)
	enq int64 // nanoseconds since Pool.epoch
}

// slot holds the counters one worker writes. Padding to two cache lines keeps
// neighbours (and the adjacent-line prefetcher) from turning every increment
// into a cross-core transfer.
type slot struct {
	// seq is 2*completed + busy for this worker, written only by it: seq&1
	// is Busy and seq/2 is Completed. A store (not a read-modify-write) as a
	// task starts, and another only when the worker goes idle; under load
	// that is one store per task. Completed may thus lag by the task a
	// worker just finished until it starts the next or parks.
	seq    atomic.Int64
	panics atomic.Int64
	_      [128 - 2*8]byte
}

// closedBit marks the pool closed inside senders; the low bits count Submit
// and TrySubmit calls between their closed check and their send, which Close
// must wait out before it may close the queue channel.
const closedBit = int64(1) << 62

// Pool is a fixed set of workers and a bounded queue, created by New. Its
// methods are safe for concurrent use.
type Pool struct {
	tasks   chan item
	slots   []slot
	onWait  func(time.Duration)
	onPanic func(any)
	epoch   time.Time

	ctx    context.Context // given to tasks; carries poolKey so nested Submits are recognised
	cancel context.CancelFunc

	// Written by submitters only: kept apart from the worker slots. Accepted
	// tasks are not counted here but derived in Stats from what the workers
	// took plus what is queued, which keeps one read-modify-write off the
	// submit path.
	_          [64]byte
	senders    atomic.Int64 // closedBit | in-flight senders
	rejected   atomic.Int64
	callerRuns atomic.Int64
	inlineDone atomic.Int64
	inlinePan  atomic.Int64
	_          [64]byte

	maxSubmitted atomic.Int64 // largest Stats.Submitted reported; see Stats

	closing   chan struct{} // closed by the first Close: wakes blocked Submits
	closeOnce sync.Once
	live      atomic.Int64  // workers still running
	done      chan struct{} // closed by the last worker to exit
}

type poolKey struct{}

// New starts a pool of cfg.Workers goroutines. They run until Close.
func New(cfg Config) *Pool {
	workers := cfg.Workers
	if workers <= 0 {
		workers = DefaultWorkersPerCPU * runtime.GOMAXPROCS(0)
	}
	queue := cfg.QueueSize
	if queue <= 0 {
		queue = DefaultQueueSize
	}
	p := &Pool{
		tasks:   make(chan item, queue),
		slots:   make([]slot, workers),
		onWait:  cfg.OnWait,
		onPanic: cfg.OnPanic,
		epoch:   time.Now(),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.ctx = context.WithValue(ctx, poolKey{}, p)
	p.cancel = cancel
	p.live.Store(int64(workers))
	for i := range p.slots {
		go p.work(&p.slots[i])
	}
	return p
}

// Submit queues task, waiting for room at most until ctx ends. It returns nil
// once the task is accepted, ErrClosed after Close, or ctx's error (wrapped)
// when ctx ended first; only a nil return means the task will run. While there
// is room, Submit does not look at ctx: checking an already cancelled context
// is the caller's business, and not doing it keeps the hot path lock-free.
//
// Called from inside a task of the same pool (with the task's context or one
// derived from it) while the queue is full, or after Close while the pool
// drains, Submit runs task itself before returning instead of waiting or
// refusing (caller-runs): a worker waiting for a worker can deadlock the pool,
// and a drain should finish the follow-ups of the work it drains. A Submit
// from a task that passes an unrelated context (say context.Background()) is
// not recognised and behaves like any other.
func (p *Pool) Submit(ctx context.Context, task func(ctx context.Context)) error {
	if task == nil {
		panic("workerpool: Submit of nil task")
	}
	if p.senders.Add(1)&closedBit != 0 {
		p.senders.Add(-1)
		return p.submitClosed(ctx, task)
	}
	it := p.newItem(task)
	select {
	case p.tasks <- it:
		p.senders.Add(-1)
		return nil
	default:
	}
	return p.submitSlow(ctx, it)
}

// submitSlow is Submit once the queue was found full; the caller is counted
// in senders and this releases it.
func (p *Pool) submitSlow(ctx context.Context, it item) error {
	if ctx.Value(poolKey{}) == p {
		p.senders.Add(-1)
		p.callerRuns.Add(1)
		p.runInline(it.fn)
		return nil
	}
	done := ctx.Done()
	if done == nil {
		// A context that never ends (Background): a two-way select is
		// measurably cheaper than three when the queue is full for long.
		select {
		case p.tasks <- it:
			p.senders.Add(-1)
			return nil
		case <-p.closing:
			p.senders.Add(-1)
			return ErrClosed
		}
	}
	select {
	case p.tasks <- it:
		p.senders.Add(-1)
		return nil
	case <-ctx.Done():
		p.rejected.Add(1)
		p.senders.Add(-1)
		return fmt.Errorf("workerpool: submit: %w", ctx.Err())
	case <-p.closing:
		p.senders.Add(-1)
		return ErrClosed
	}
}

// submitClosed is Submit after Close. A task still running during the drain
// may be finishing work that needs a follow-up (the nested Submit): refusing it
// would leave that work half done, and the caller is a live worker anyway, so
// the follow-up runs inline. Anyone else gets ErrClosed.
func (p *Pool) submitClosed(ctx context.Context, task func(context.Context)) error {
	if ctx.Value(poolKey{}) != p {
		return ErrClosed
	}
	select {
	case <-p.done:
		// A goroutine that kept a task's context outlived the pool.
		return ErrClosed
	default:
	}
	p.callerRuns.Add(1)
	p.runInline(task)
	return nil
}

// TrySubmit queues task if there is room right now and never blocks. It
// returns ErrFull when the queue is full (also from inside a task: the caller
// decides what to do) and ErrClosed after Close.
func (p *Pool) TrySubmit(task func(ctx context.Context)) error {
	if task == nil {
		panic("workerpool: TrySubmit of nil task")
	}
	if p.senders.Add(1)&closedBit != 0 {
		p.senders.Add(-1)
		return ErrClosed
	}
	select {
	case p.tasks <- p.newItem(task):
		p.senders.Add(-1)
		return nil
	default:
		p.rejected.Add(1)
		p.senders.Add(-1)
		return ErrFull
	}
}

func (p *Pool) newItem(task func(context.Context)) item {
	it := item{fn: task}
	if p.onWait != nil {
		it.enq = int64(time.Since(p.epoch))
	}
	return it
}

// Close stops accepting tasks, lets the workers finish everything already
// queued and waits for them to exit. If ctx ends first, Close cancels the
// context tasks receive (running tasks should return, queued ones are still
// called, with that cancelled context) and returns ctx's error without
// waiting further; Done reports when the workers are finally gone.
//
// Close may be called more than once and concurrently; every call waits (up to
// its own ctx) for the same shutdown. Called from a task with the task's
// context, Close starts the shutdown and returns nil at once: a worker cannot
// wait for itself to exit.
func (p *Pool) Close(ctx context.Context) error {
	p.closeOnce.Do(p.shutdown)
	if ctx.Value(poolKey{}) == p {
		return nil
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		p.cancel()
		return fmt.Errorf("workerpool: close: %w", ctx.Err())
	}
}

// shutdown marks the pool closed, waits out the senders that got past the
// closed check (they either send or see closing promptly), then closes the
// queue so the workers exit once it is empty.
func (p *Pool) shutdown() {
	p.senders.Or(closedBit)
	close(p.closing)
	for i := 0; p.senders.Load() != closedBit; i++ {
		if i < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(10 * time.Microsecond)
		}
	}
	close(p.tasks)
}

// Done is closed when every worker has exited, which happens only after Close.
func (p *Pool) Done() <-chan struct{} { return p.done }

// Stats returns a snapshot of the pool's counters.
func (p *Pool) Stats() Stats {
	s := Stats{
		Workers:    int64(len(p.slots)),
		QueueCap:   int64(cap(p.tasks)),
		Rejected:   p.rejected.Load(),
		CallerRuns: p.callerRuns.Load(),
		Completed:  p.inlineDone.Load(),
		Panics:     p.inlinePan.Load(),
	}
	for i := range p.slots {
		sl := &p.slots[i]
		seq := sl.seq.Load()
		s.Busy += seq & 1
		s.Completed += seq / 2
		s.Panics += sl.panics.Load()
	}
	// The queue is read after the workers: a task only moves from queue to
	// worker, so none is counted twice, but one that moved to an already
	// read worker in between is missed. The sum is thus never above the
	// truth and exact at rest; clamping it to the largest value reported
	// before keeps it monotonic, as a Prometheus counter must be.
	s.QueueDepth = int64(len(p.tasks))
	s.Submitted = s.Completed + s.Busy + s.QueueDepth
	for {
		prev := p.maxSubmitted.Load()
		if s.Submitted <= prev {
			s.Submitted = prev
			break
		}
		if p.maxSubmitted.CompareAndSwap(prev, s.Submitted) {
			break
		}
	}
	return s
}

// work is a worker's loop; it owns nothing but its slot and exits when the
// queue is closed and empty.
func (p *Pool) work(sl *slot) {
	finished := false
	defer func() {
		if !finished {
			// A task called runtime.Goexit (t.FailNow does): that ends this
			// goroutine whatever we do, so hand the slot to a replacement
			// rather than silently losing a worker.
			sl.seq.Add(1)
			go p.work(sl)
			return
		}
		if p.live.Add(-1) == 0 {
			p.cancel() // no task can observe it any more; releases the context
			close(p.done)
		}
	}()
	seq := sl.seq.Load() // non-zero when replacing a worker lost to Goexit
	for {
		var it item
		var ok bool
		select {
		case it, ok = <-p.tasks:
			// Straight on to the next task: "done with the last" and
			// "busy with this one" go out in the one store below.
		default:
			sl.seq.Store(seq) // idle: publish before parking
			it, ok = <-p.tasks
		}
		if !ok {
			break
		}
		if p.onWait != nil {
			p.onWait(time.Duration(int64(time.Since(p.epoch)) - it.enq))
		}
		sl.seq.Store(seq + 1)
		if p.call(it.fn) {
			sl.panics.Add(1)
		}
		seq += 2
	}
	sl.seq.Store(seq)
	finished = true
}

// runInline runs a nested task on its caller's goroutine.
func (p *Pool) runInline(fn func(context.Context)) {
	if p.call(fn) {
		p.inlinePan.Add(1)
	}
	p.inlineDone.Add(1)
}

// call runs fn with the pool's context and reports whether it panicked.
// Since Go 1.21 panic(nil) recovers as a *runtime.PanicNilError, so a nil
// recover means no panic.
func (p *Pool) call(fn func(context.Context)) (panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			panicked = true
			if p.onPanic != nil {
				p.onPanic(r)
			}
		}
	}()
	fn(p.ctx)
	return false
}
