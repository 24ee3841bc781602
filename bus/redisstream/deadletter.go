package redisstream

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/redis/go-redis/v9"
)

// defaultDeadLetterLimit is the page DeadLetters returns when asked for none.
const defaultDeadLetterLimit = 100

// DeadLetters returns up to limit (100 when limit <= 0) dead letters of
// every group and partition, oldest first. A dead letter's ID is its
// partition and its entry id in the partition's dead-letter stream
// ("3-1700000000000-0"); Redrive takes it.
func (b *Bus) DeadLetters(ctx context.Context, limit int) ([]orderflow.DeadLetter, error) {
	if limit <= 0 {
		limit = defaultDeadLetterLimit
	}
	pipe := b.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(b.streams))
	for p := range b.streams {
		cmds[p] = pipe.XRangeN(ctx, b.deadKey(p), "-", "+", int64(limit))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, redisErr(ctx, err, "list dead letters")
	}
	out := []orderflow.DeadLetter{}
	for p, cmd := range cmds {
		for _, m := range cmd.Val() {
			out = append(out, deadLetterOf(p, m))
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// deadLetterOf decodes a dead-letter stream entry of partition p.
func deadLetterOf(p int, m redis.XMessage) orderflow.DeadLetter {
	d := orderflow.DeadLetter{ID: strconv.Itoa(p) + "-" + m.ID}
	// A damaged entry is shown as far as it decodes: its first event.
	if evs, _, _ := decode(m); len(evs) > 0 {
		d.Event = evs[0]
	}
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	d.Group = str("dl:group")
	d.Attempts, _ = strconv.Atoi(str("dl:attempts"))
	d.LastError = str("dl:error")
	if at, err := strconv.ParseInt(str("dl:at"), 10, 64); err == nil {
		d.At = time.Unix(0, at).UTC()
	}
	return d
}

// Redrive moves dead letter id back into its partition's stream as a new
// entry that only its group handles (other groups acknowledge it unseen),
// with Attempt starting at 1, and deletes the dead letter, in one script. An
// unknown id is not_found. A redriven event is not ordered against later
// events of its order: those went ahead when it was dead-lettered.
func (b *Bus) Redrive(ctx context.Context, id string) error {
	ps, entryID, ok := strings.Cut(id, "-")
	p, err := strconv.Atoi(ps)
	if !ok || err != nil || p < 0 || p >= len(b.streams) {
		return orderflow.Errorf(orderflow.ENotFound, "no dead letter %q", id)
	}
	if _, _, ok := parseID(entryID); !ok {
		return orderflow.Errorf(orderflow.ENotFound, "no dead letter %q", id)
	}
	n, err := redriveScript.Run(ctx, b.rdb, []string{b.deadKey(p), b.streams[p]}, entryID).Int()
	if err != nil {
		return redisErr(ctx, err, "redrive")
	}
	if n == 0 {
		return orderflow.Errorf(orderflow.ENotFound, "no dead letter %q", id)
	}
	return nil
}
