package redisstream

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Trim deletes, from every partition, the entries that every consumer group
// has acknowledged and that are older than retain. It trims by MINID,
// computed inside one script from each group's oldest pending entry and
// last-delivered id, so an entry still pending or not yet delivered to
// some group is never dropped (a plain MAXLEN would drop both). It returns
// how many entries it deleted. A stream without groups is left alone: no
// one has said what it needs.
func (b *Bus) Trim(ctx context.Context, retain time.Duration) (int64, error) {
	floor := "0"
	if retain > 0 {
		floor = strconv.FormatInt(time.Now().Add(-retain).UnixMilli(), 10) + "-0"
	}
	var total int64
	for p := range b.streams {
		n, err := trimScript.Run(ctx, b.rdb, []string{b.streams[p]}, floor).Int64()
		if err != nil {
			return total, redisErr(ctx, err, fmt.Sprintf("trim %s", b.streams[p]))
		}
		total += n
	}
	return total, nil
}

// RunTrimmer calls Trim every interval until ctx ends, logging failures
// (the next round tries again). Run it in one process or many: trimming is
// idempotent.
func (b *Bus) RunTrimmer(ctx context.Context, interval, retain time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := b.Trim(ctx, retain); err != nil && ctx.Err() == nil {
				b.cfg.Logger.Warn("redisstream: trim failed", "err", err)
			}
		}
	}
}
