package sqlbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/store/sqlite"
)

var (
	_ orderflow.Consumer    = (*Bus)(nil)
	_ orderflow.DeadLetters = (*Bus)(nil)
)

// Defaults for the zero fields of Config.
const (
	// DefaultConcurrency is the number of handlers one Consume runs at once:
	// the risk engine spends most of a delivery waiting on a callback, so
	// many run per core.
	DefaultConcurrency = 64
	// DefaultBatchSize is how many outbox rows one poll reads.
	DefaultBatchSize = 256
	// DefaultPollInterval is how often an idle group looks for new events;
	// Notify makes the wait shorter.
	DefaultPollInterval = 25 * time.Millisecond
	// DefaultFlushInterval is how long acks gather before they are written
	// together: a few milliseconds turn one write per event into one per
	// batch, while a crash redelivers at most that much.
	DefaultFlushInterval = 5 * time.Millisecond
	// DefaultMaxDeliveries is how many failed deliveries dead-letter an event.
	DefaultMaxDeliveries = 10
	// DefaultBackoffBase is the wait before the second delivery; it doubles
	// with every failure up to DefaultBackoffMax.
	DefaultBackoffBase = 100 * time.Millisecond
	// DefaultBackoffMax caps the back-off between deliveries.
	DefaultBackoffMax = 5 * time.Second
	// DefaultShutdownGrace is how long running handlers may finish after
	// Consume's context ends before their own context is cancelled.
	DefaultShutdownGrace = 5 * time.Second
)

// Config tunes a Bus. The zero value works: each zero field takes its
// Default.
type Config struct {
	// Concurrency is the number of handlers each Consume call runs at once.
	Concurrency int
	// BatchSize is the number of outbox rows one poll reads.
	BatchSize int
	// MaxInFlight bounds the events a group has read and not yet finished
	// (handling, waiting for a worker or a back-off); the poller reads no
	// more until some finish. Default 4 × BatchSize.
	MaxInFlight int
	// PollInterval is the wait between polls that found nothing new.
	PollInterval time.Duration
	// FlushInterval is how long acks and failure counts gather before they
	// are written in one transaction.
	FlushInterval time.Duration
	// MaxDeliveries is the number of failed deliveries after which an event
	// is dead-lettered.
	MaxDeliveries int
	// BackoffBase and BackoffMax bound the wait before a redelivery: BackoffBase
	// doubled per failure, capped at BackoffMax, then jittered down by up to
	// half so failed events of many orders do not come back in lockstep.
	BackoffBase, BackoffMax time.Duration
	// ShutdownGrace is how long running handlers may finish once Consume's
	// context ended, before their context is cancelled.
	ShutdownGrace time.Duration
	// Logger receives the bus's warnings (a failed poll or ack write, which
	// are retried). Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Concurrency, DefaultConcurrency)
	def(&c.BatchSize, DefaultBatchSize)
	def(&c.MaxInFlight, 4*c.BatchSize)
	def(&c.MaxDeliveries, DefaultMaxDeliveries)
	defDur(&c.PollInterval, DefaultPollInterval)
	defDur(&c.FlushInterval, DefaultFlushInterval)
	defDur(&c.BackoffBase, DefaultBackoffBase)
	defDur(&c.BackoffMax, DefaultBackoffMax)
	defDur(&c.ShutdownGrace, DefaultShutdownGrace)
	if c.BackoffMax < c.BackoffBase {
		c.BackoffMax = c.BackoffBase
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Bus delivers the outbox of one sqlite.Store to consumer groups. It is safe
// for concurrent use. It starts no goroutine of its own: Consume and
// RunPruner own theirs. Use one Bus per store and process.
type Bus struct {
	st    *sqlite.Store
	cfg   Config
	stats counters

	// joinMu serializes starting and stopping groups, so a group that is
	// stopping has written its acks before a new Consume of it reads them.
	joinMu sync.Mutex
	mu     sync.Mutex // guards groups
	groups map[string]*group

	schemaMu   sync.Mutex
	schemaDone bool

	// redrives counts Redrive calls, so a group's poller reads bus_redrive
	// at once after one and otherwise only every redrivePollEvery.
	redrives atomic.Uint64
}

// New returns a bus over st's outbox. The store must stay open while any
// Consume runs. The bus creates its own tables in st's file on first use.
func New(st *sqlite.Store, cfg Config) *Bus {
	return &Bus{st: st, cfg: cfg.withDefaults(), groups: map[string]*group{}}
}

// Notify wakes the poller of every running group, so an event committed just
// now is read at once instead of at the next poll. The order service calls it
// after each commit that wrote an event. It never blocks.
func (b *Bus) Notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, g := range b.groups {
		g.poke(g.wake)
	}
}

// Consume delivers the group's events to h until ctx ends; see the package
// documentation for the guarantees. Several Consume calls of one group share
// its events. It returns nil after ctx ended and everything handled was
// acknowledged durably; an error when the group could not start, or when the
// last acks could not be written (those events will be delivered again).
func (b *Bus) Consume(ctx context.Context, group string, h orderflow.Handler) error {
	switch {
	case group == "":
		return orderflow.Invalid("group", "consumer group is required")
	case h == nil:
		return orderflow.Invalid("handler", "handler is required")
	}
	g, err := b.join(ctx, group)
	if err != nil {
		if ctx.Err() != nil {
			return nil // ended before it began: nothing was delivered
		}
		return err
	}
	// Handlers run under a context that outlives ctx by the grace period, so
	// a handler halfway through a callback can finish it and be acked.
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	c := &consumer{g: g, h: h, ctx: hctx, stop: ctx.Done()}
	var wg sync.WaitGroup
	for range b.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run()
		}()
	}
	<-ctx.Done()
	grace := time.AfterFunc(b.cfg.ShutdownGrace, cancelHandlers)
	wg.Wait()
	grace.Stop()
	cancelHandlers()
	return b.leave(g)
}

// join returns the running group name, starting it when this is its first
// consumer.
func (b *Bus) join(ctx context.Context, name string) (*group, error) {
	b.joinMu.Lock()
	defer b.joinMu.Unlock()
	b.mu.Lock()
	g := b.groups[name]
	if g != nil {
		g.refs++
	}
	b.mu.Unlock()
	if g != nil {
		return g, nil
	}
	if err := b.ensureSchema(ctx); err != nil {
		return nil, err
	}
	g, err := startGroup(ctx, b, name)
	if err != nil {
		return nil, fmt.Errorf("sqlbus: start group %s: %w", name, err)
	}
	g.refs = 1
	b.mu.Lock()
	b.groups[name] = g
	b.mu.Unlock()
	return g, nil
}

// leave drops a consumer of g and, when it was the last one, stops the
// group's goroutines and writes its remaining acks.
func (b *Bus) leave(g *group) error {
	b.joinMu.Lock()
	defer b.joinMu.Unlock()
	b.mu.Lock()
	g.refs--
	last := g.refs == 0
	if last {
		delete(b.groups, g.name)
	}
	b.mu.Unlock()
	if !last {
		return nil
	}
	return g.stop()
}

// writeCtx bounds the bus's own writes, which run under no caller's context.
func writeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// errGaveUp is the dead-letter reason when the delivery limit was reached
// without a final verdict: a dead-letter write failed earlier, or the
// deliveries were cut short by the process dying.
var errGaveUp = errors.New("sqlbus: delivery limit reached")
