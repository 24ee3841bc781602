package sqlbus

import (
	"container/heap"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/orderflow/orderflow"
)

// entry is one event read by a group and not yet behind its cursor.
type entry struct {
	ev        orderflow.Event
	redriveID int64 // > 0: read from bus_redrive, not the outbox
	attempts  int   // deliveries started so far (failed ones are persisted)
	claimed   bool  // a delivery of it was counted durably before it started
	lastErr   error // the last failed delivery's error in this process
	acked     bool
}

// orderQueue holds the unfinished events of one order, oldest first. It is
// in exactly one place at a time: the ready channel, a worker, or the
// back-off heap, which is what keeps one order's events sequential.
type orderQueue struct {
	key    string
	events []*entry
	due    time.Time // when it leaves the back-off heap
	index  int       // in the back-off heap
}

// group is the running state of one consumer group, shared by its Consume
// calls. The poller and the flusher are its goroutines; the last Consume to
// leave stops them.
type group struct {
	b    *Bus
	name string
	refs int // Consume calls in the group; guarded by b.mu

	poll, pollRedrive *sql.Stmt
	// ctx ends when the group stops, cancelling a poll in progress.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	cursor  int64 // every outbox seq <= cursor is acked in memory
	durable int64 // the cursor as last written
	readPos int64 // the highest outbox seq read
	// recoverUpTo is the highest outbox seq when the group started: events
	// up to it may have been in flight when an earlier process died, so the
	// first delivery of each in this process is counted durably before it
	// starts (see claim).
	recoverUpTo int64
	redrivePos  int64 // the highest bus_redrive id read
	// The poller's own: the Bus.redrives count it last acted on, when it
	// next reads bus_redrive regardless, and whether the last read was full.
	redriveSeen uint64
	redriveAt   time.Time
	redriveMore bool
	window      []*entry         // outbox entries above cursor, in seq order
	known       map[int64]stored // bus_deliveries rows read at start
	orders      map[string]*orderQueue
	inflight    int // entries dispatched and not finished
	starved     bool
	backoff     backoffHeap
	acks        []int64          // outbox seqs acked since the last flush
	redriveAck  []int64          // bus_redrive ids acked since the last flush
	failures    map[*entry]int   // failed-delivery counts to persist
	lastWarn    map[string]int64 // warning → unix second last logged, to log each once a second

	ready   chan *orderQueue // cap MaxInFlight: sends under mu never block
	wake    chan struct{}    // poller: new events (Notify), room, or a back-off due
	pending chan struct{}    // flusher: something to write
	quit    chan struct{}
	wg      sync.WaitGroup
}

// stored is what bus_deliveries knew about an event at start.
type stored struct {
	attempts int
	acked    bool
}

// startGroup registers the group's cursor (new groups start at the
// beginning of the outbox), loads its state and starts its goroutines.
func startGroup(ctx context.Context, b *Bus, name string) (*group, error) {
	err := b.st.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO bus_cursors (grp, seq, updated_at) VALUES (?, 0, ?)
			ON CONFLICT (grp) DO NOTHING`, name, time.Now().UnixNano())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("register cursor: %w", err)
	}
	g := &group{
		b: b, name: name,
		known:    map[int64]stored{},
		orders:   map[string]*orderQueue{},
		failures: map[*entry]int{},
		lastWarn: map[string]int64{},
		ready:    make(chan *orderQueue, b.cfg.MaxInFlight),
		wake:     make(chan struct{}, 1),
		pending:  make(chan struct{}, 1),
		quit:     make(chan struct{}),
	}
	db := b.st.ReadDB()
	if err := db.QueryRowContext(ctx, `SELECT seq FROM bus_cursors WHERE grp = ?`, name).Scan(&g.cursor); err != nil {
		return nil, fmt.Errorf("read cursor: %w", err)
	}
	g.durable, g.readPos = g.cursor, g.cursor
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM outbox`).Scan(&g.recoverUpTo); err != nil {
		return nil, fmt.Errorf("read outbox head: %w", err)
	}
	if err := g.loadDeliveries(ctx, db); err != nil {
		return nil, err
	}
	if g.poll, err = db.PrepareContext(ctx, `SELECT seq, id, type, order_id, payload, headers, created_at
		FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?`); err != nil {
		return nil, fmt.Errorf("prepare poll: %w", err)
	}
	if g.pollRedrive, err = db.PrepareContext(ctx, `SELECT seq, event_id, type, order_id, payload, headers,
		created_at, id, attempts FROM bus_redrive WHERE grp = ? AND id > ? ORDER BY id LIMIT ?`); err != nil {
		g.poll.Close()
		return nil, fmt.Errorf("prepare redrive poll: %w", err)
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.wg.Add(2)
	go g.poller()
	go g.flusher()
	return g, nil
}

func (g *group) loadDeliveries(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT seq, attempts, acked FROM bus_deliveries WHERE grp = ? AND seq > ?`,
		g.name, g.cursor)
	if err != nil {
		return fmt.Errorf("read deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var s stored
		if err := rows.Scan(&seq, &s.attempts, &s.acked); err != nil {
			return fmt.Errorf("read deliveries: %w", err)
		}
		g.known[seq] = s
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read deliveries: %w", err)
	}
	return nil
}

// stop ends the group's goroutines, once no worker is left, and writes
// what they acknowledged.
func (g *group) stop() error {
	close(g.quit)
	g.cancel()
	g.wg.Wait()
	g.poll.Close()
	g.pollRedrive.Close()
	ctx, cancel := writeCtx()
	defer cancel()
	if err := g.flush(ctx); err != nil {
		return fmt.Errorf("sqlbus: group %s: last acks not written, their events will be delivered again: %w", g.name, err)
	}
	return nil
}

// poke signals ch without blocking; one pending signal is enough.
func (g *group) poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// poller reads new events into the group and releases back-offs that are
// due. It sleeps PollInterval after a poll that found nothing, and is woken
// early by Notify, by room freeing up, or by a back-off falling due.
func (g *group) poller() {
	defer g.wg.Done()
	cfg := &g.b.cfg
	timer := time.NewTimer(0)
	defer timer.Stop()
	ctx := g.ctx
	for {
		select {
		case <-g.quit:
			return
		case <-timer.C:
		case <-g.wake:
		}
		more, err := g.pollOnce(ctx)
		if err != nil && ctx.Err() == nil {
			g.warn("poll failed; retrying", err)
		}
		wait := cfg.PollInterval
		if more {
			wait = 0
		}
		if next, ok := g.releaseDue(time.Now()); ok && next < wait {
			wait = next
		}
		timer.Reset(wait)
	}
}

// pollOnce reads what fits into the group's in-flight budget, redriven
// events first, and dispatches it. more reports that a full batch was read,
// so the next poll should not wait.
func (g *group) pollOnce(ctx context.Context) (more bool, err error) {
	cfg := &g.b.cfg
	g.mu.Lock()
	free := cfg.MaxInFlight - g.inflight
	g.starved = free < cfg.refill()
	room := min(free, cfg.BatchSize)
	readPos, redrivePos := g.readPos, g.redrivePos
	g.mu.Unlock()
	if g.starved {
		return false, nil
	}
	// bus_redrive is read at once after a Redrive in this process, and
	// otherwise every redrivePollEvery (rows written by another process
	// sharing the file): reading it on every poll was one query per poll
	// for a table that is nearly always empty.
	var redriven []*entry
	now := time.Now()
	if n := g.b.redrives.Load(); n != g.redriveSeen || g.redriveMore || !now.Before(g.redriveAt) {
		if redriven, err = g.read(ctx, g.pollRedrive, true, g.name, redrivePos, room); err != nil {
			return false, err
		}
		g.redriveSeen, g.redriveAt, g.redriveMore = n, now.Add(redrivePollEvery), len(redriven) == room
	}
	events, err := g.read(ctx, g.poll, false, readPos, room-len(redriven))
	if err != nil {
		return false, err
	}
	g.applyKnown(events)
	g.b.stats.read.Add(uint64(len(events) + len(redriven)))
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, e := range redriven {
		g.redrivePos = max(g.redrivePos, e.redriveID)
		g.dispatch(e)
	}
	for _, e := range events {
		g.readPos = e.ev.Seq
		g.window = append(g.window, e)
		if !e.acked {
			g.dispatch(e)
		}
	}
	return len(redriven)+len(events) == room, nil
}

// applyKnown gives events what bus_deliveries said about them at start:
// their failed deliveries and whether they were acked out of order. Only
// the poller calls it, and only it touches known.
func (g *group) applyKnown(events []*entry) {
	for _, e := range events {
		if s, ok := g.known[e.ev.Seq]; ok {
			e.attempts, e.acked = s.attempts, s.acked
			delete(g.known, e.ev.Seq)
		}
	}
}

// redrivePollEvery is how often a group reads bus_redrive when no Redrive
// in this process said there is something to read.
const redrivePollEvery = time.Second

// refill is how much of the in-flight budget must be free before the poller
// reads again. Reading the moment one event finishes would make the poller
// run two queries per event in lockstep with the handlers; waiting for a
// quarter of the budget (or a batch) keeps polls large.
func (c *Config) refill() int { return max(1, min(c.BatchSize, c.MaxInFlight/4)) }

// read runs a poll statement and scans its rows.
func (g *group) read(ctx context.Context, st *sql.Stmt, redrive bool, args ...any) ([]*entry, error) {
	if n := args[len(args)-1].(int); n <= 0 {
		return nil, nil
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	if !redrive {
		g.b.stats.polls.Add(1)
	}
	defer rows.Close()
	var out []*entry
	for rows.Next() {
		e := &entry{}
		var headers string
		var created int64
		dest := []any{&e.ev.Seq, &e.ev.ID, &e.ev.Type, &e.ev.OrderID, &e.ev.Payload, &headers, &created}
		if redrive {
			dest = append(dest, &e.redriveID, &e.attempts)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		e.ev.CreatedAt = time.Unix(0, created).UTC()
		if headers != "" && headers != "{}" {
			if err := json.Unmarshal([]byte(headers), &e.ev.Headers); err != nil {
				// A header the bus cannot read must not stop the event:
				// the trace context is lost, the event is not.
				g.warn("event headers unreadable; delivered without them", fmt.Errorf("event %s: %w", e.ev.ID, err))
			}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// dispatch queues e behind its order's unfinished events. g.mu is held.
func (g *group) dispatch(e *entry) {
	g.inflight++
	key := e.ev.OrderID
	if key == "" {
		key = "\x00" + e.ev.ID // no order: nothing to keep it in order with
	}
	if q := g.orders[key]; q != nil {
		q.events = append(q.events, e)
		return
	}
	q := &orderQueue{key: key, events: []*entry{e}, index: -1}
	g.orders[key] = q
	g.ready <- q
}

// releaseDue moves the orders whose back-off has passed to the ready queue
// and returns how long until the next one is due.
func (g *group) releaseDue(now time.Time) (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.backoff.Len() > 0 {
		q := g.backoff[0]
		if d := q.due.Sub(now); d > 0 {
			return d, true
		}
		heap.Pop(&g.backoff)
		g.ready <- q
	}
	return 0, false
}

// warn logs err under msg at most once a second per msg: a poll that fails
// every few milliseconds while the store is down must not flood the log.
func (g *group) warn(msg string, err error) {
	now := time.Now().Unix()
	g.mu.Lock()
	if g.lastWarn[msg] == now {
		g.mu.Unlock()
		return
	}
	g.lastWarn[msg] = now
	g.mu.Unlock()
	g.b.cfg.Logger.Warn("sqlbus: "+msg, "group", g.name, "err", err)
}

// backoffHeap orders the queues waiting out a back-off by due time.
type backoffHeap []*orderQueue

func (h backoffHeap) Len() int           { return len(h) }
func (h backoffHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h backoffHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *backoffHeap) Push(x any) {
	q := x.(*orderQueue)
	q.index = len(*h)
	*h = append(*h, q)
}
func (h *backoffHeap) Pop() any {
	old := *h
	q := old[len(old)-1]
	old[len(old)-1] = nil
	q.index = -1
	*h = old[:len(old)-1]
	return q
}
