package redisstream

import (
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// claimLoop takes back this consumer's own pending entries at start (a
// restarted process with a stable Config.Consumer), then, every
// ClaimInterval, claims entries idle for ClaimIdle in other consumers'
// pending lists: those consumers died or stalled.
func (c *consumer) claimLoop(ctx context.Context) {
	for p := range c.b.streams {
		if err := c.recoverOwn(ctx, p); err != nil && ctx.Err() == nil {
			c.cfg.Logger.Warn("redisstream: recovering own pending entries failed", "group", c.group, "err", err)
		}
	}
	close(c.recovered)
	cursors := make([]string, len(c.b.streams))
	t := time.NewTicker(c.cfg.ClaimInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for p := range c.b.streams {
			if cursors[p] == "" {
				cursors[p] = "0-0"
			}
			next, err := c.autoClaim(ctx, p, cursors[p])
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				c.cfg.Logger.Warn("redisstream: reclaim failed", "group", c.group, "err", err)
				continue
			}
			cursors[p] = next
			if err := c.forget(ctx, p); err != nil && ctx.Err() == nil {
				c.cfg.Logger.Warn("redisstream: forgetting idle consumers failed", "group", c.group, "err", err)
			}
		}
	}
}

// forgetAfter is how many ClaimIdle periods a consumer with nothing pending
// must be idle before it is deleted from the group. A live consumer reads
// every Config.Block, so only a gone one gets there.
const forgetAfter = 10

// forget deletes partition p's consumers of the group that are gone.
func (c *consumer) forget(ctx context.Context, p int) error {
	idle := max(forgetAfter*c.cfg.ClaimIdle, 10*c.cfg.Block)
	return forgetScript.Run(ctx, c.b.rdb, []string{c.b.streams[p]}, c.group, idle.Milliseconds(), c.name).Err()
}

// recoverOwn claims every entry already pending under this consumer's
// name in partition p, with their delivery counts.
func (c *consumer) recoverOwn(ctx context.Context, p int) error {
	start := "-"
	for {
		if !c.waitSpace(ctx) {
			return nil
		}
		pend, err := c.b.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: c.b.streams[p], Group: c.group, Start: start, End: "+",
			Count: int64(c.cfg.BatchSize), Consumer: c.name,
		}).Result()
		if err != nil || len(pend) == 0 {
			return err
		}
		ids := make([]string, len(pend))
		counts := make(map[string]int64, len(pend))
		for i, x := range pend {
			ids[i] = x.ID
			counts[x.ID] = x.RetryCount
		}
		msgs, err := c.b.rdb.XClaim(ctx, &redis.XClaimArgs{
			Stream: c.b.streams[p], Group: c.group, Consumer: c.name, MinIdle: 0, Messages: ids,
		}).Result()
		if err != nil {
			return err
		}
		c.take(ctx, p, ids, msgs, counts, 1)
		start = "(" + ids[len(ids)-1]
	}
}

// autoClaim runs one XAUTOCLAIM round on partition p from cursor and
// returns the next cursor.
func (c *consumer) autoClaim(ctx context.Context, p int, cursor string) (string, error) {
	for {
		if !c.waitSpace(ctx) {
			return cursor, nil
		}
		msgs, next, deleted, err := c.b.rdb.XAutoClaimWithDeleted(ctx, &redis.XAutoClaimArgs{
			Stream: c.b.streams[p], Group: c.group, Consumer: c.name, MinIdle: c.cfg.ClaimIdle,
			Start: cursor, Count: int64(c.cfg.BatchSize),
		}).Result()
		if err != nil {
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				return "0-0", c.b.createGroup(ctx, c.group)
			}
			return cursor, err
		}
		if len(deleted) > 0 {
			// Entries deleted (XDEL, a foreign MAXLEN trim) while pending:
			// Redis 7 dropped them from the pending list in this very call;
			// the XACK makes sure of it on any version. Nothing to deliver.
			if err := c.b.rdb.XAck(ctx, c.b.streams[p], c.group, deleted...).Err(); err != nil {
				return cursor, err
			}
			c.cfg.Logger.Warn("redisstream: pending entries were deleted from the stream", "group", c.group,
				"stream", c.b.streams[p], "entries", len(deleted))
		}
		if len(msgs) > 0 {
			counts := c.counts(ctx, p, msgs)
			ids := make([]string, len(msgs))
			for i, m := range msgs {
				ids[i] = m.ID
			}
			c.take(ctx, p, ids, msgs, counts, 0)
		}
		if next == "0-0" || next == "" {
			return "0-0", nil
		}
		cursor = next
	}
}

// counts returns the delivery counts of msgs just claimed by this consumer.
func (c *consumer) counts(ctx context.Context, p int, msgs []redis.XMessage) map[string]int64 {
	pend, err := c.b.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: c.b.streams[p], Group: c.group, Start: msgs[0].ID, End: msgs[len(msgs)-1].ID,
		Count: int64(len(msgs) + c.cfg.MaxInFlight), Consumer: c.name,
	}).Result()
	out := make(map[string]int64, len(pend))
	if err != nil {
		return out
	}
	for _, x := range pend {
		out[x.ID] = x.RetryCount
	}
	return out
}

// take dispatches claimed msgs with Attempt = their delivery count + extra
// (the count read before a claim that bumped it, or after). Asked-for ids
// that did not come back were deleted from the stream: their pending
// entries are acknowledged away.
func (c *consumer) take(ctx context.Context, p int, ids []string, msgs []redis.XMessage, counts map[string]int64, extra int) {
	got := make(map[string]bool, len(msgs))
	es := make([]*entry, 0, len(msgs))
	for _, m := range msgs {
		got[m.ID] = true
		n, ok := counts[m.ID]
		if !ok {
			n = 1 // unknown: it was delivered at least once before
		}
		es = append(es, newEntries(p, m, int(n)+extra)...)
	}
	var gone []string
	for _, id := range ids {
		if !got[id] {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		_ = c.b.rdb.XAck(ctx, c.b.streams[p], c.group, gone...).Err()
	}
	if len(es) > 0 {
		c.dispatch(ctx, es)
	}
}
