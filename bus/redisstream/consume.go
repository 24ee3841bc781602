package redisstream

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/orderflow/orderflow"
	"github.com/redis/go-redis/v9"
)

// errGaveUp is the dead-letter reason of an entry whose delivery count
// passed the limit without a verdict: deliveries cut short by consumers
// dying, typically a poison event that crashes its handler's process.
var errGaveUp = errors.New("redisstream: delivery limit reached")

// msg is one stream entry held by a consumer, from read to ack: one event,
// or the several of a batch entry. It is acknowledged with the last of its
// events to settle, unless one of them was released unsettled.
type msg struct {
	part int
	id   string // stream entry id
	n    int    // its events
	left int    // events not settled yet; c.mu
	keep bool   // leave it pending: an event was released unsettled; c.mu
	lost bool   // another consumer claimed it: drop its events unhandled; c.mu
}

// entry is one event of a held stream entry, from read to ack.
type entry struct {
	m       *msg
	ev      orderflow.Event
	evID    any    // ev.ID boxed once: the dedup check and the ack both send it
	key     idKey  // ev.ID in the memo of ids handled here
	only    string // redriven for this group only
	bad     error  // undecodable: dead-lettered without handling
	raw     []any  // the fields of an undecodable entry, for its dead letter
	known   bool   // its event is marked done for the group: acknowledged unhandled
	attempt int    // the delivery about to run (or running)
	bump    bool   // record attempt in the pending list before delivering
	mark    bool   // set the done marker with the ack
	closes  bool   // the last event of its entry to settle: acknowledge the entry
}

type heldKey struct {
	part int
	id   string
}

// orderQueue holds one order's entries in stream order; at most one worker
// (or one back-off timer) has it at a time, which is what keeps one order's
// events sequential within a consumer.
type orderQueue struct {
	id      string
	entries []*entry // entries[first:] are queued; the array is reused
	first   int
}

// push appends e and reports whether it is the only entry (the queue was
// idle and must be made ready).
func (q *orderQueue) push(e *entry) bool {
	q.entries = append(q.entries, e)
	return len(q.entries)-q.first == 1
}

// head returns the entry at the front.
func (q *orderQueue) head() *entry { return q.entries[q.first] }

// pop removes the front entry and reports whether entries remain.
func (q *orderQueue) pop() (*entry, bool) {
	e := q.entries[q.first]
	q.entries[q.first] = nil
	q.first++
	switch {
	case q.first == len(q.entries):
		q.entries, q.first = q.entries[:0], 0
		return e, false
	case q.first >= 32 && 2*q.first >= len(q.entries):
		// A queue that never drains would otherwise grow by its popped
		// prefix: move the queued entries to the front (amortised O(1)).
		n := copy(q.entries, q.entries[q.first:])
		clear(q.entries[n:])
		q.entries, q.first = q.entries[:n], 0
	}
	return e, true
}

// consumer is one Consume call: one named consumer in the group.
type consumer struct {
	b     *Bus
	cfg   Config
	group string
	name  string
	h     orderflow.Handler
	hctx  context.Context // handlers' context: outlives Consume's by the grace
	done  *doneKeys

	ready     chan *orderQueue // orders whose head entry may run now
	recovered chan struct{}    // closed once own pending entries were taken back
	acks      chan *entry      // entries to acknowledge
	settled   chan struct{}    // a token whenever a worker finished with a head entry
	starved   atomic.Int32     // goroutines waiting for room: acks must not wait

	room  int // the most events held at once: ready and acks never fill
	chunk int // the most events dispatched at once: room - MaxInFlight

	mu         sync.Mutex
	held       map[heldKey]*msg
	heldEvents int // events of held entries not settled yet
	// freed is closed, and replaced, whenever held entries are released:
	// a broadcast, since the reader and the reclaimer may both wait for
	// room, and a single token would wake only one of them.
	freed     chan struct{}
	orders    map[string]*orderQueue
	spare     []*orderQueue // emptied queues, reused: most entries start a queue
	timers    map[*time.Timer]struct{}
	recent    map[idKey]struct{} // event ids handled here: catches a republish
	recentOld map[idKey]struct{} // inside one read batch, before any marker
	ackErr    error
}

// recentCap bounds each generation of consumer.recent.
const recentCap = 1 << 16

// Consume delivers the group's events to h until ctx ends, as one consumer
// of the group, named after Config.Consumer; see the package documentation
// for the guarantees. It returns nil after ctx ended and every handled
// event was acknowledged; an error when the group could not be set up, or
// when the last acknowledgements could not be written (those events will be
// delivered again).
func (b *Bus) Consume(ctx context.Context, group string, h orderflow.Handler) error {
	switch {
	case group == "" || strings.ContainsAny(group, "{}"):
		return orderflow.Invalid("group", "consumer group is required, without braces")
	case h == nil:
		return orderflow.Invalid("handler", "handler is required")
	}
	if err := b.createGroup(ctx, group); err != nil {
		return err
	}
	name, release := b.acquireName(group)
	defer release()

	cfg := b.cfg
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	// A read (or a claim) comes once the consumer holds fewer than
	// MaxInFlight events, and its events are taken in chunks of one
	// event per entry it may bring (BatchSize per partition), each as room
	// frees: the reader waits (back-pressure) rather than the queues
	// growing with the events per entry. The queues' buffers are scanned
	// by every garbage collection, so they stay this size.
	chunk := cfg.BatchSize * (cfg.Partitions + 1)
	bound := cfg.MaxInFlight + chunk
	c := &consumer{
		b: b, cfg: cfg, group: group, name: name, h: h, hctx: hctx, room: bound, chunk: chunk,
		done:      &doneKeys{b: b, group: group},
		ready:     make(chan *orderQueue, bound),
		acks:      make(chan *entry, bound),
		freed:     make(chan struct{}),
		settled:   make(chan struct{}, 1),
		recovered: make(chan struct{}),
		held:      map[heldKey]*msg{},
		orders:    map[string]*orderQueue{},
		timers:    map[*time.Timer]struct{}{},
		recent:    map[idKey]struct{}{}, recentOld: map[idKey]struct{}{},
	}

	var readers, workers, tail sync.WaitGroup
	readers.Go(func() { c.readLoop(ctx) })
	readers.Go(func() { c.claimLoop(ctx) })
	for range cfg.Concurrency {
		workers.Go(func() { c.work(ctx) })
	}
	keepStop := make(chan struct{})
	tail.Go(c.ackLoop)
	tail.Go(func() { c.keepAliveLoop(keepStop) })

	<-ctx.Done()
	grace := time.AfterFunc(cfg.ShutdownGrace, cancelHandlers)
	readers.Wait()
	workers.Wait()
	grace.Stop()
	c.mu.Lock()
	for t := range c.timers {
		t.Stop()
	}
	c.mu.Unlock()
	close(c.acks) // no sender is left: readers and workers returned
	close(keepStop)
	tail.Wait()
	return c.ackErr
}

// createGroup creates group on every partition, from the start of each
// stream, so a new group sees everything not yet trimmed.
func (b *Bus) createGroup(ctx context.Context, group string) error {
	pipe := b.rdb.Pipeline()
	for _, s := range b.streams {
		pipe.XGroupCreateMkStream(ctx, s, group, "0")
	}
	cmds, _ := pipe.Exec(ctx)
	for _, c := range cmds {
		if err := c.Err(); err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return redisErr(ctx, err, "create group "+group)
		}
	}
	return nil
}

// readLoop reads new entries with XREADGROUP while there is room.
func (c *consumer) readLoop(ctx context.Context) {
	keys := make([]string, 0, 2*len(c.b.streams))
	keys = append(keys, c.b.streams...)
	for range c.b.streams {
		keys = append(keys, ">")
	}
	// New entries wait until the entries left pending under this name
	// were taken back: read first, they would be claimed again (and counted
	// twice) by the recovery.
	select {
	case <-c.recovered:
	case <-ctx.Done():
		return
	}
	fails := 0
	for ctx.Err() == nil {
		if !c.waitSpace(ctx) {
			return
		}
		streams, err := c.read(ctx, keys, c.readCount())
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				// A stream was deleted under us (an operator, a test's
				// cleanup): recreate it with the group and go on.
				_ = c.b.createGroup(ctx, c.group)
			}
			fails++
			c.cfg.Logger.Warn("redisstream: read failed; retrying", "group", c.group, "err", err)
			sleep(ctx, backoff(fails, 10*time.Millisecond, time.Second))
			continue
		}
		fails = 0
		var es []*entry
		for _, s := range streams {
			p := c.partOf(s.Stream)
			for _, m := range s.Messages {
				es = append(es, newEntries(p, m, 1)...)
			}
		}
		c.dispatch(ctx, es)
	}
}

// readCount is the COUNT per stream of the next read: the entries that
// fit the consumer's room if every partition answered with full entries
// of EntryEvents, at least 1 and at most BatchSize. A read of BatchSize
// entries of every partition could take up to BatchSize × Partitions ×
// EntryEvents events at once: a backlog would go to whichever consumer of
// the group read first, and sit in its queues while the others idled.
func (c *consumer) readCount() int64 {
	c.mu.Lock()
	room := c.cfg.MaxInFlight - c.heldEvents
	c.mu.Unlock()
	n := room / (len(c.b.streams) * c.cfg.EntryEvents)
	return int64(min(max(n, 1), c.cfg.BatchSize))
}

// read runs one XREADGROUP over every partition, of up to count entries
// each. A cluster cannot serve one command over keys in different slots,
// so there it polls the partitions in a pipeline without blocking, and
// waits briefly when all were empty.
func (c *consumer) read(ctx context.Context, keys []string, count int64) ([]redis.XStream, error) {
	if !c.b.cluster {
		res, err := c.b.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: c.group, Consumer: c.name, Streams: keys, Count: count, Block: c.cfg.Block,
		}).Result()
		if errors.Is(err, redis.Nil) {
			return nil, nil
		}
		return res, err
	}
	pipe := c.b.rdb.Pipeline()
	cmds := make([]*redis.XStreamSliceCmd, len(c.b.streams))
	for i, s := range c.b.streams {
		cmds[i] = pipe.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: c.group, Consumer: c.name, Streams: []string{s, ">"}, Count: count, Block: -1,
		})
	}
	_, _ = pipe.Exec(ctx)
	var out []redis.XStream
	for _, cmd := range cmds {
		res, err := cmd.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		out = append(out, res...)
	}
	if len(out) == 0 {
		sleep(ctx, 5*time.Millisecond)
	}
	return out, nil
}

func (c *consumer) partOf(stream string) int {
	for p, s := range c.b.streams {
		if s == stream {
			return p
		}
	}
	return -1
}

// newEntries returns the events of stream entry m of partition p, each
// to be delivered as attempt. An entry that does not decode is one entry,
// to be dead-lettered with its fields as they are.
func newEntries(p int, m redis.XMessage, attempt int) []*entry {
	evs, only, err := decode(m)
	ms := &msg{part: p, id: m.ID}
	if err != nil {
		var ev orderflow.Event
		if len(evs) > 0 {
			ev = evs[0]
		}
		ms.n, ms.left = 1, 1
		return []*entry{{m: ms, ev: ev, only: only, bad: err, raw: rawFields(m), attempt: attempt}}
	}
	ms.n, ms.left = len(evs), len(evs)
	arr := make([]entry, len(evs))
	es := make([]*entry, len(evs))
	for i := range evs {
		arr[i] = entry{m: ms, ev: evs[i], evID: evs[i].ID, key: keyOf(evs[i].ID), only: only, attempt: attempt}
		es[i] = &arr[i]
	}
	return es
}

// rawFields returns m's fields as an XADD field list, in name order.
func rawFields(m redis.XMessage) []any {
	names := make([]string, 0, len(m.Values))
	for k := range m.Values {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([]any, 0, 2*len(names))
	for _, k := range names {
		out = append(out, k, m.Values[k])
	}
	return out
}

// waitSpace blocks while the consumer holds MaxInFlight events; false
// when ctx ended. The reader and the reclaimer both call it.
func (c *consumer) waitSpace(ctx context.Context) bool {
	return c.waitRoom(ctx, 1, c.cfg.MaxInFlight)
}

// waitRoom blocks until n more events fit under limit; false when ctx
// ended.
func (c *consumer) waitRoom(ctx context.Context, n, limit int) bool {
	for {
		c.mu.Lock()
		held := c.heldEvents
		freed := c.freed
		c.mu.Unlock()
		if held+n <= limit {
			return true
		}
		c.starved.Add(1)
		select {
		case c.settled <- struct{}{}: // wake the ack loop if it waits for more
		default:
		}
		select {
		case <-freed:
		case <-ctx.Done():
		}
		c.starved.Add(-1)
		if ctx.Err() != nil {
			return false
		}
	}
}

// dispatch takes the events of entries read or claimed: events this group
// already handled (the relay published them again) are acknowledged
// without handling, the rest queue behind their order's earlier events.
// It takes them in chunks that fit the consumer's room, waiting for room
// as needed; what it could not take when ctx ended stays pending.
func (c *consumer) dispatch(ctx context.Context, es []*entry) {
	for len(es) > 0 {
		n := min(len(es), c.chunk)
		if !c.waitRoom(ctx, n, c.room) {
			return
		}
		c.dispatchChunk(ctx, es[:n])
		es = es[n:]
	}
}

func (c *consumer) dispatchChunk(ctx context.Context, es []*entry) {
	c.mu.Lock()
	fresh := es[:0]
	var last *msg // the entry just taken: its other events follow it
	for _, e := range es {
		if e.m != last {
			k := heldKey{e.m.part, e.m.id}
			if h, ok := c.held[k]; (ok && h != e.m) || e.m.part < 0 {
				continue // ours already (a reclaim found our own idle entry)
			}
			c.held[k] = e.m
			last = e.m
		}
		c.heldEvents++
		fresh = append(fresh, e)
	}
	c.mu.Unlock()
	c.markKnown(ctx, fresh)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range fresh {
		if e.known {
			c.acks <- e
			continue
		}
		q := c.orders[e.ev.OrderID]
		if q == nil {
			q = c.newQueueLocked(e.ev.OrderID)
			c.orders[q.id] = q
		}
		if q.push(e) {
			c.ready <- q
		}
	}
}

// markKnown sets known on the entries whose event the group already
// handled: its id is in a done-marker bucket of its partition that can
// hold its marker (depth). One SMISMEMBER per partition and bucket, in one
// pipeline; fresh events need only the current bucket. Plain commands,
// not a script: the check only reads, so it needs no atomicity, each
// command touches one key (any slot of a cluster), and Redis spends about
// half the CPU on them that a script spends on the same checks. When Redis
// fails to answer it marks none: handling twice is allowed, skipping is
// not.
func (c *consumer) markKnown(ctx context.Context, es []*entry) {
	check := es[:0:0]
	for _, e := range es {
		if e.bad == nil && (e.only == "" || e.only == c.group) {
			check = append(check, e)
		}
	}
	if len(check) == 0 {
		return
	}
	keys, cur := c.done.get(time.Now())
	type smis struct {
		es  []*entry
		cmd *redis.BoolSliceCmd
	}
	var checks []smis
	pipe := c.b.rdb.Pipeline()
	for p, pes := range groupByPart(check, len(c.b.streams)) {
		deepest := -1
		for _, e := range pes {
			deepest = max(deepest, c.depth(e, cur))
		}
		for b := 0; b <= deepest; b++ {
			sub := pes
			if b > 0 {
				sub = nil
				for _, e := range pes {
					if c.depth(e, cur) >= b {
						sub = append(sub, e)
					}
				}
			}
			ids := make([]any, len(sub))
			for i, e := range sub {
				ids[i] = e.evID
			}
			checks = append(checks, smis{sub, pipe.SMIsMember(ctx, keys[p][b], ids...)})
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		c.cfg.Logger.Warn("redisstream: dedup check failed; handling anyway", "group", c.group, "err", err)
		return
	}
	for _, ch := range checks {
		for i, f := range ch.cmd.Val() {
			if f && i < len(ch.es) {
				ch.es[i].known = true
			}
		}
	}
}

// depth returns how many buckets before the current one (cur) may hold
// e's marker: a marker is written after its event was created, so only
// buckets whose window ends after the creation time (less clockSkew) can.
func (c *consumer) depth(e *entry, cur int64) int {
	w := int64(c.b.bucketWidth())
	created := e.ev.CreatedAt.UnixNano() - int64(clockSkew)
	if e.ev.CreatedAt.IsZero() || created < 0 {
		return doneBuckets
	}
	return int(min(max(cur-created/w, 0), doneBuckets))
}

// work runs head entries of ready orders until ctx ends.
func (c *consumer) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case q := <-c.ready:
			c.handleHead(q)
			select {
			case c.settled <- struct{}{}:
			default:
			}
		}
	}
}

// handleHead delivers q's first entry and settles it.
func (c *consumer) handleHead(q *orderQueue) {
	c.mu.Lock()
	e := q.head()
	_, seen := c.recent[e.key]
	if !seen {
		_, seen = c.recentOld[e.key]
	}
	lost := e.m.lost
	c.mu.Unlock()
	switch {
	case lost:
		c.next(q, nil)
		return
	case e.bad != nil:
		c.deadLetter(q, e, e.bad)
		return
	case e.only != "" && e.only != c.group, seen:
		c.next(q, e) // not ours to handle, or handled here already
		return
	case e.attempt > c.cfg.MaxDeliveries:
		c.deadLetter(q, e, errGaveUp)
		return
	}
	if e.bump && !c.touchOne(e) {
		c.next(q, nil) // another consumer took it over; it delivers it
		return
	}
	err := c.call(e)
	if err == nil {
		e.mark = true // next remembers it, under the same lock
		c.next(q, e)
		return
	}
	if orderflow.IsPermanent(err) || e.attempt >= c.cfg.MaxDeliveries {
		c.deadLetter(q, e, err)
		return
	}
	e.attempt++
	e.bump = true
	c.mu.Lock()
	defer c.mu.Unlock()
	var t *time.Timer
	t = time.AfterFunc(backoff(e.attempt-1, c.cfg.BackoffBase, c.cfg.BackoffMax), func() {
		c.mu.Lock()
		delete(c.timers, t)
		c.mu.Unlock()
		c.ready <- q // never blocks: ready holds every order at once
	})
	c.timers[t] = struct{}{}
}

// call runs the handler; a panic fails the delivery instead of the process.
func (c *consumer) call(e *entry) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("redisstream: handler panicked: %v", r)
		}
	}()
	return c.h(c.hctx, orderflow.Delivery{Event: e.ev, Group: c.group, Attempt: e.attempt})
}

// next pops q's head entry, queueing it for acknowledgement when ack is
// set (otherwise it is released at once, and its stream entry left
// pending), and passes q on.
func (c *consumer) next(q *orderQueue, ack *entry) {
	c.mu.Lock()
	head, more := q.pop()
	if more {
		c.ready <- q
	} else {
		delete(c.orders, q.id)
		c.freeQueueLocked(q)
	}
	if ack == nil {
		head.m.left--
		head.m.keep = true
		c.heldEvents--
		c.forgetLocked(head.m)
		c.freedLocked()
	} else if ack.mark {
		c.rememberLocked(ack.key)
	}
	c.mu.Unlock()
	if ack != nil {
		c.acks <- ack
	}
}

// maxSpare bounds consumer.spare.
const maxSpare = 256

// newQueueLocked returns an empty queue for order id; c.mu is held.
func (c *consumer) newQueueLocked(id string) *orderQueue {
	if n := len(c.spare); n > 0 {
		q := c.spare[n-1]
		c.spare[n-1] = nil
		c.spare = c.spare[:n-1]
		q.id = id
		return q
	}
	return &orderQueue{id: id, entries: make([]*entry, 0, 2)}
}

// freeQueueLocked keeps q, which is empty and no longer in c.orders, for
// reuse; c.mu is held and no goroutine refers to q any more.
func (c *consumer) freeQueueLocked(q *orderQueue) {
	if len(c.spare) < maxSpare && cap(q.entries) <= 16 {
		q.id = ""
		c.spare = append(c.spare, q)
	}
}

// forgetLocked drops m from the held entries once each of its events is
// settled (a claim may hold the same stream entry anew by then); c.mu is
// held.
func (c *consumer) forgetLocked(m *msg) {
	if k := (heldKey{m.part, m.id}); m.left == 0 && c.held[k] == m {
		delete(c.held, k)
	}
}

// freedLocked wakes every goroutine waiting in waitSpace; c.mu is held.
func (c *consumer) freedLocked() {
	close(c.freed)
	c.freed = make(chan struct{})
}

// rememberLocked records an event id handled here, in two bounded
// generations; c.mu is held.
func (c *consumer) rememberLocked(k idKey) {
	if len(c.recent) >= recentCap {
		c.recentOld, c.recent = c.recent, make(map[idKey]struct{}, recentCap)
	}
	c.recent[k] = struct{}{}
}

// idKey stands for an event id in the memo of ids handled here: two
// independent 64-bit hashes of it (xxhash, and maphash with a per-process
// seed). The memo then holds no strings: no allocation per id, and nothing
// for the garbage collector to scan; string keys (copied, so as not to pin
// each entry's whole packed event) took 9% of bench/peers/bus's CPU. Two
// different ids share a key with a chance of about 2^-128 per pair, far
// below that of a flipped memory bit; a wrong match would acknowledge that
// one delivery unhandled and unmarked, which the reconciler republishes.
type idKey [2]uint64

// idSeed seeds the second hash of idKey.
var idSeed = maphash.MakeSeed()

func keyOf(id string) idKey {
	return idKey{xxhash.Sum64String(id), maphash.String(idSeed, id)}
}

// backoff returns base doubled per failure, capped at max, jittered down by
// up to half so failures of many orders do not come back in lockstep.
func backoff(failures int, base, limit time.Duration) time.Duration {
	d := base
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d - time.Duration(rand.Int64N(int64(d)/2+1))
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
