package redisstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxAckBatch bounds the entries of one flush.
const maxAckBatch = 2048

// ioTimeout bounds the consumer's own Redis calls, which run under no
// caller's context (they must finish while Consume shuts down).
const ioTimeout = 5 * time.Second

// ackLoop acknowledges entries as they come, in batches that size
// themselves without a timer: it takes whatever gathered while the
// previous flush ran and, while deliveries are still queued for the
// workers (their acks are on the way) and the reader is not waiting for
// room, waits for those too, up to maxAckBatch. An idle consumer therefore
// acks at once, and a loaded one writes one script call per partition for
// hundreds of entries. It returns when c.acks is closed and drained.
func (c *consumer) ackLoop() {
	batch := make([]*entry, 0, maxAckBatch)
	for e := range c.acks {
		batch = append(batch[:0], e)
	gather:
		for len(batch) < maxAckBatch {
			select {
			case e, ok := <-c.acks:
				if !ok {
					break gather
				}
				batch = append(batch, e)
				continue
			default:
			}
			if len(c.ready) == 0 || c.starved.Load() > 0 {
				break
			}
			// More is queued: wait for the next ack, or for a worker to
			// settle an entry without one (then look again).
			select {
			case e, ok := <-c.acks:
				if !ok {
					break gather
				}
				batch = append(batch, e)
			case <-c.settled:
			}
		}
		c.flush(batch)
		clear(batch)
	}
}

// flush writes the acks of batch, retrying for a while; entries whose ack
// could not be written stay pending and are delivered again.
func (c *consumer) flush(batch []*entry) {
	c.mu.Lock()
	for _, e := range batch {
		e.m.left--
		e.closes = e.m.left == 0 && !e.m.keep
	}
	c.mu.Unlock()
	var err error
	for try := 1; try <= 8; try++ {
		if err = c.writeAcks(batch); err == nil {
			break
		}
		c.cfg.Logger.Warn("redisstream: ack failed; retrying", "group", c.group, "entries", len(batch), "err", err)
		time.Sleep(backoff(try, 10*time.Millisecond, time.Second))
	}
	c.mu.Lock()
	if err != nil {
		c.ackErr = fmt.Errorf("redisstream: %d acks of group %s not written: %w", len(batch), c.group, err)
	}
	c.heldEvents -= len(batch)
	for _, e := range batch {
		c.forgetLocked(e.m)
	}
	c.freedLocked()
	c.mu.Unlock()
}

// writeAcks writes the done markers of batch, and the acks of the stream
// entries it closes, with ackScript: one call for the whole batch off a
// cluster, one per partition on a cluster (a script's keys must share a
// slot), pipelined.
func (c *consumer) writeAcks(batch []*entry) error {
	byPart := groupByPart(batch, len(c.b.streams))
	now := time.Now()
	keys, _ := c.done.get(now)
	// The bucket lives DedupTTL past the end of its window.
	ttl := int64((c.cfg.DedupTTL+c.b.bucketWidth())/time.Second) + 1
	var calls []scriptCall
	var cl *scriptCall
	for p, es := range byPart {
		if len(es) == 0 {
			continue
		}
		if c.b.cluster || cl == nil {
			n := len(batch) // off a cluster the call takes the whole batch
			if c.b.cluster {
				n = len(es)
			}
			calls = append(calls, scriptCall{args: make([]any, 0, 2+2*len(byPart)+2*n)})
			cl = &calls[len(calls)-1]
			cl.args = append(cl.args, c.group, ttl)
		}
		cl.keys = append(cl.keys, c.b.streams[p], keys[p][0])
		at := len(cl.args)
		cl.args = append(cl.args, 0, 0)
		marks, acks := 0, 0
		for _, e := range es {
			if e.mark {
				cl.args = append(cl.args, e.evID)
				marks++
			}
		}
		for _, e := range es {
			if e.closes {
				cl.args = append(cl.args, e.m.id)
				acks++
			}
		}
		cl.args[at], cl.args[at+1] = marks, acks
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	_, err := evalAll(ctx, c.b.rdb, ackScript, calls)
	return err
}

// groupByPart returns es grouped by partition, each group in es's order:
// out[p] are the entries of partition p, all slices of one array.
func groupByPart(es []*entry, parts int) [][]*entry {
	end := make([]int, parts)
	for _, e := range es {
		end[e.m.part]++
	}
	for p := 1; p < parts; p++ {
		end[p] += end[p-1]
	}
	sorted := make([]*entry, len(es))
	out := make([][]*entry, parts)
	for p := range out {
		lo := 0
		if p > 0 {
			lo = end[p-1]
		}
		out[p] = sorted[lo:lo:end[p]]
	}
	for _, e := range es {
		out[e.m.part] = append(out[e.m.part], e)
	}
	return out
}

// maxErrorLen bounds the last error kept with a dead letter.
const maxErrorLen = 2000

// deadLetter copies e's event to its partition's dead letters with cause,
// and settles it. An entry of one event is acknowledged by the same
// script; an event of a batch entry is settled like an acknowledged one,
// unmarked, and its entry is acknowledged with the last of its events;
// if the entry is delivered again before that, the event is settled
// without a second copy. A failed copy leaves the entry pending: it is
// delivered again and, past the delivery limit, dead-lettered then.
func (c *consumer) deadLetter(q *orderQueue, e *entry, cause error) {
	reason := cause.Error()
	if len(reason) > maxErrorLen {
		reason = reason[:maxErrorLen]
	}
	whole := e.m.n == 1
	// The set of the batch's dead-lettered events need only outlive the
	// siblings' done markers: past those, a redelivery handles them again.
	ttl := int64(c.cfg.DedupTTL/time.Second) + 1
	args := []any{c.group, e.m.id, whole, e.ev.ID, ttl}
	if e.bad != nil {
		args = append(args, e.raw...)
	} else {
		args = append(args, fields(&e.ev, "")...)
	}
	args = append(args, "dl:group", c.group, "dl:entry", e.m.id, "dl:attempts", e.attempt,
		"dl:error", reason, "dl:at", strconv.FormatInt(time.Now().UnixNano(), 10))
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	keys := []string{c.b.streams[e.m.part], c.b.deadKey(e.m.part), c.b.deadOfKey(e.m.part, c.group, e.m.id)}
	res, err := deadScript.Run(ctx, c.b.rdb, keys, args...).Int()
	if err != nil {
		c.cfg.Logger.Warn("redisstream: dead-letter failed; it stays pending", "group", c.group, "entry", e.m.id, "err", err)
	}
	// res 1: copied now; 2: copied by an earlier delivery of its batch
	// entry; 0 (or an error): the entry is not pending, or not settled.
	if whole || res == 0 {
		c.next(q, nil)
		return
	}
	c.next(q, e)
}

// touchOne records e's coming delivery in the pending list (its retry
// count) and resets its idle time; false when another consumer owns it now.
func (c *consumer) touchOne(e *entry) bool {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	lost, err := touchScript.Run(ctx, c.b.rdb, []string{c.b.streams[e.m.part]}, c.group, c.name, e.attempt, e.m.id).StringSlice()
	if err != nil {
		// Unknown: deliver anyway; at worst twice, never lost.
		c.cfg.Logger.Warn("redisstream: retry count not recorded", "group", c.group, "entry", e.m.id, "err", err)
		return true
	}
	return len(lost) == 0
}

// keepAliveLoop resets the idle time of every entry the consumer holds,
// every KeepAlive, so they are not reclaimed while queued or handled. It
// runs until stop is closed, after the last handler returned.
func (c *consumer) keepAliveLoop(stop <-chan struct{}) {
	t := time.NewTicker(c.cfg.KeepAlive)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := c.keepAlive(); err != nil && !errors.Is(err, redis.Nil) {
				c.cfg.Logger.Warn("redisstream: keep-alive failed", "group", c.group, "err", err)
			}
		}
	}
}

// keepAliveChunk bounds the ids of one touch script call.
const keepAliveChunk = 512

func (c *consumer) keepAlive() error {
	byPart := map[int][]any{}
	c.mu.Lock()
	for k := range c.held {
		byPart[k.part] = append(byPart[k.part], k.id)
	}
	c.mu.Unlock()
	if len(byPart) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	var calls []scriptCall
	var parts []int // parts[i]: the partition of calls[i]
	for p, ids := range byPart {
		for len(ids) > 0 {
			n := min(len(ids), keepAliveChunk)
			calls = append(calls, scriptCall{keys: []string{c.b.streams[p]}, args: append([]any{c.group, c.name, 0}, ids[:n]...)})
			parts = append(parts, p)
			ids = ids[n:]
		}
	}
	cmds, err := evalAll(ctx, c.b.rdb, touchScript, calls)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, cmd := range cmds {
		lost, _ := cmd.StringSlice()
		for _, id := range lost {
			if m := c.held[heldKey{parts[i], id}]; m != nil {
				m.lost = true // still queued: it is not ours to handle any more
			}
		}
	}
	return nil
}
