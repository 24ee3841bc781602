package redisstream_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/bus/bustest"
	"github.com/orderflow/orderflow/bus/redisstream"
	"github.com/redis/go-redis/v9"
)

// counter counts deliveries per event id and keeps the last of each.
type counter struct {
	mu   sync.Mutex
	n    map[string]int
	last map[string]orderflow.Delivery
}

func newCounter() *counter {
	return &counter{n: map[string]int{}, last: map[string]orderflow.Delivery{}}
}

func (c *counter) add(d orderflow.Delivery) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[d.ID]++
	c.last[d.ID] = d
}

func (c *counter) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id]
}

func (c *counter) get(id string) orderflow.Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last[id]
}

// run starts b.Consume(group, h) and returns a stop that waits for it.
func run(t *testing.T, b *redisstream.Bus, group string, h orderflow.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Consume(ctx, group, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Consume: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// setup returns a client, a config with a fresh prefix and a bus on them,
// with group created on every partition from the start.
func setup(t *testing.T, group string) (*redis.Client, redisstream.Config, *redisstream.Bus) {
	t.Helper()
	rdb := MustClient(t)
	cfg := testConfig(MustPrefix(t, rdb))
	b := redisstream.New(rdb, cfg)
	for p := range cfg.Partitions {
		if err := rdb.XGroupCreateMkStream(context.Background(), b.Stream(p), group, "0").Err(); err != nil {
			t.Fatal(err)
		}
	}
	return rdb, cfg, b
}

// ghostRead reads every partition's new entries as consumer "ghost", which
// then dies without acknowledging them; it returns the events they held.
func ghostRead(t *testing.T, rdb *redis.Client, b *redisstream.Bus, cfg redisstream.Config, group string) int {
	t.Helper()
	keys := []string{}
	for p := range cfg.Partitions {
		keys = append(keys, b.Stream(p))
	}
	for range cfg.Partitions {
		keys = append(keys, ">")
	}
	res, err := rdb.XReadGroup(context.Background(), &redis.XReadGroupArgs{
		Group: group, Consumer: "ghost", Streams: keys, Count: 1000, Block: -1,
	}).Result()
	if err != nil {
		t.Fatalf("ghost read: %v", err)
	}
	n := 0
	for _, s := range res {
		for _, m := range s.Messages {
			n += len(redisstream.EventsOf(m))
		}
	}
	return n
}

// pending returns the group's pending count over all partitions.
func pending(t *testing.T, rdb *redis.Client, b *redisstream.Bus, cfg redisstream.Config, group string) int64 {
	t.Helper()
	var n int64
	for p := range cfg.Partitions {
		x, err := rdb.XPending(context.Background(), b.Stream(p), group).Result()
		if err != nil {
			t.Fatal(err)
		}
		n += x.Count
	}
	return n
}

func publish(t *testing.T, b *redisstream.Bus, evs ...orderflow.Event) {
	t.Helper()
	if err := b.Publish(context.Background(), evs); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func TestReclaimFromDeadConsumer(t *testing.T) {
	rdb, cfg, b := setup(t, "risk")
	evs := bustest.Events("o", 40, 8)
	publish(t, b, evs...)
	if n := ghostRead(t, rdb, b, cfg, "risk"); n != len(evs) {
		t.Fatalf("ghost read %d, want %d", n, len(evs))
	}
	c := newCounter()
	start := time.Now()
	run(t, b, "risk", func(_ context.Context, d orderflow.Delivery) error { c.add(d); return nil })
	eventually(t, "every event reclaimed and handled", func() bool {
		for _, e := range evs {
			if c.count(e.ID) == 0 {
				return false
			}
		}
		return true
	})
	if waited := time.Since(start); waited < cfg.ClaimIdle/2 {
		t.Errorf("reclaimed after %v, before the ghost's entries were idle for ClaimIdle %v", waited, cfg.ClaimIdle)
	}
	for _, e := range evs {
		if n, d := c.count(e.ID), c.get(e.ID); n != 1 || d.Attempt != 2 {
			t.Errorf("%s: %d deliveries, attempt %d; want 1 delivery as attempt 2 (the ghost had the first)", e.ID, n, d.Attempt)
		}
	}
	eventually(t, "nothing pending", func() bool { return pending(t, rdb, b, cfg, "risk") == 0 })
}

func TestKeepAliveKeepsLongHandlerEntries(t *testing.T) {
	rdb, cfg, _ := setup(t, "risk")
	cfg.ClaimIdle, cfg.KeepAlive, cfg.ClaimInterval = 500*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
	cfgA, cfgB := cfg, cfg
	cfgA.Consumer, cfgB.Consumer = "a", "b"
	a, b := redisstream.New(rdb, cfgA), redisstream.New(rdb, cfgB)
	slow := bustest.Event("slow", 0)
	const hold = 2 * time.Second // four times ClaimIdle
	c := newCounter()
	var inSlow atomic.Bool
	h := func(_ context.Context, d orderflow.Delivery) error {
		c.add(d)
		if d.ID == slow.ID {
			inSlow.Store(true)
			time.Sleep(hold)
		}
		return nil
	}
	run(t, a, "risk", h)
	publish(t, a, slow)
	eventually(t, "the slow handler started", inSlow.Load)
	run(t, b, "risk", h) // a live second consumer that reclaims idle entries
	time.Sleep(hold / 2)
	p := a.Partition(slow.OrderID)
	ext, err := rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{
		Stream: a.Stream(p), Group: "risk", Start: "-", End: "+", Count: 10,
	}).Result()
	if err != nil || len(ext) != 1 {
		t.Fatalf("pending mid-handler = %v, %v; want the slow entry", ext, err)
	}
	if e := ext[0]; e.Consumer != "a-0" || e.RetryCount != 1 || e.Idle >= cfg.ClaimIdle {
		t.Errorf("mid-handler pending entry %+v: want owner a-0, 1 delivery (JUSTID counts none), idle < %v", e, cfg.ClaimIdle)
	}
	eventually(t, "nothing pending", func() bool { return pending(t, rdb, a, cfg, "risk") == 0 })
	if n := c.count(slow.ID); n != 1 {
		t.Errorf("slow event delivered %d times, want 1: its entry was stolen while handled", n)
	}
}

func TestDeletedPendingEntriesCleaned(t *testing.T) {
	rdb, cfg, b := setup(t, "risk")
	evs := bustest.Events("o", 20, 20)
	publish(t, b, evs...)
	ghostRead(t, rdb, b, cfg, "risk")
	// Delete every other entry while the ghost has them pending.
	deleted := map[string]bool{}
	ctx := context.Background()
	for p := range cfg.Partitions {
		msgs, err := rdb.XRange(ctx, b.Stream(p), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range msgs {
			if i%2 == 0 {
				if err := rdb.XDel(ctx, b.Stream(p), m.ID).Err(); err != nil {
					t.Fatal(err)
				}
				for _, e := range redisstream.EventsOf(m) {
					deleted[e.ID] = true
				}
			}
		}
	}
	c := newCounter()
	run(t, b, "risk", func(_ context.Context, d orderflow.Delivery) error { c.add(d); return nil })
	eventually(t, "nothing pending", func() bool { return pending(t, rdb, b, cfg, "risk") == 0 })
	for _, e := range evs {
		want := 1
		if deleted[e.ID] {
			want = 0
		}
		if n := c.count(e.ID); n != want {
			t.Errorf("%s (deleted %v) delivered %d times, want %d", e.ID, deleted[e.ID], n, want)
		}
	}
	if len(deleted) == 0 {
		t.Fatal("test deleted nothing")
	}
}

func TestTrimNeverDropsPendingOrUndelivered(t *testing.T) {
	rdb, cfg, b := setup(t, "slow")
	ctx := context.Background()
	// One entry per event: the test counts entries.
	one := func(evs []orderflow.Event) {
		for _, e := range evs {
			publish(t, b, e)
		}
	}
	first := bustest.Events("a", 40, 10)
	one(first)
	// Group "slow": a ghost holds the first batch pending, the second
	// batch is not delivered to it at all.
	ghostRead(t, rdb, b, cfg, "slow")
	second := bustest.Events("b", 40, 10)
	one(second)
	// Group "fast" acknowledges everything.
	c := newCounter()
	stop := run(t, b, "fast", func(_ context.Context, d orderflow.Delivery) error { c.add(d); return nil })
	eventually(t, "fast handled all", func() bool {
		for _, e := range append(first[:len(first):len(first)], second...) {
			if c.count(e.ID) == 0 {
				return false
			}
		}
		return pending(t, rdb, b, cfg, "fast") == 0
	})
	stop()
	if n, err := b.Trim(ctx, 0); err != nil || n != 0 {
		t.Fatalf("Trim with everything pending for slow = %d, %v; want 0 trimmed", n, err)
	}
	// The ghost acknowledges the first half of its entries per partition.
	acked := map[string]bool{}
	for p := range cfg.Partitions {
		msgs, _ := rdb.XRange(ctx, b.Stream(p), "-", "+").Result()
		var pend []string
		for _, m := range msgs {
			if strings.HasPrefix(redisstream.EventsOf(m)[0].OrderID, "a") {
				pend = append(pend, m.ID)
			}
		}
		half := pend[:len(pend)/2]
		if err := rdb.XAck(ctx, b.Stream(p), "slow", half...).Err(); err != nil {
			t.Fatal(err)
		}
		for _, id := range half {
			acked[fmt.Sprint(p, "/", id)] = true
		}
	}
	n, err := b.Trim(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(acked)) {
		t.Errorf("trimmed %d entries, want the %d that every group acknowledged", n, len(acked))
	}
	left := 0
	for p := range cfg.Partitions {
		msgs, _ := rdb.XRange(ctx, b.Stream(p), "-", "+").Result()
		for _, m := range msgs {
			if acked[fmt.Sprint(p, "/", m.ID)] {
				t.Errorf("acked entry %s survived", m.ID)
			}
		}
		left += len(msgs)
	}
	if want := len(first) + len(second) - len(acked); left != want {
		t.Errorf("%d entries left, want %d (everything pending or undelivered for slow)", left, want)
	}
	// The group that lagged can still read all it has not seen.
	if got := ghostRead(t, rdb, b, cfg, "slow"); got != len(second) {
		t.Errorf("slow then read %d undelivered entries, want %d", got, len(second))
	}
}

func TestDedupAckedAndFailedNotMarked(t *testing.T) {
	rdb, cfg, b := setup(t, "risk")
	ok, bad := bustest.Event("ok", 0), bustest.Event("bad", 0)
	c := newCounter()
	var healed atomic.Bool
	run(t, b, "risk", failing(c, bad.ID, &healed, errors.New("dependency down")))
	publish(t, b, ok, bad)
	eventually(t, "ok handled, bad dead-lettered", func() bool {
		dls, _ := b.DeadLetters(context.Background(), 10)
		return c.count(ok.ID) == 1 && len(dls) == 1
	})
	ctx := context.Background()
	markers := func(id string) int {
		keys, err := rdb.Keys(ctx, cfg.Prefix+":*:done:risk:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, k := range keys {
			if ok, _ := rdb.SIsMember(ctx, k, id).Result(); ok {
				n++
			}
		}
		return n
	}
	if markers(ok.ID) != 1 || markers(bad.ID) != 0 {
		t.Errorf("done markers ok=%d bad=%d, want 1 and 0: only success marks", markers(ok.ID), markers(bad.ID))
	}
	healed.Store(true)
	// The relay publishes both again (it crashed before marking them sent).
	publish(t, b, ok, bad)
	eventually(t, "bad handled again and succeeded", func() bool { return c.count(bad.ID) == cfg.MaxDeliveries+1 })
	eventually(t, "nothing pending", func() bool { return pending(t, rdb, b, cfg, "risk") == 0 })
	if n := c.count(ok.ID); n != 1 {
		t.Errorf("republished ok event handled %d times, want 1: it was marked done", n)
	}
	// Another group is not affected by risk's markers.
	c2 := newCounter()
	run(t, b, "audit", func(_ context.Context, d orderflow.Delivery) error { c2.add(d); return nil })
	eventually(t, "audit handled ok once per copy", func() bool { return c2.count(ok.ID) >= 1 })
}

func TestPoisonPastLimitDeadLetteredUnhandled(t *testing.T) {
	rdb, cfg, b := setup(t, "risk")
	poison := bustest.Event("p", 0)
	publish(t, b, poison)
	ghostRead(t, rdb, b, cfg, "risk")
	// The poison crashed MaxDeliveries consumers already: its count says so.
	p := b.Partition(poison.OrderID)
	ids, err := rdb.XRange(context.Background(), b.Stream(p), "-", "+").Result()
	if err != nil || len(ids) != 1 {
		t.Fatal(ids, err)
	}
	if err := rdb.Do(context.Background(), "XCLAIM", b.Stream(p), "risk", "ghost", 0, ids[0].ID,
		"JUSTID", "RETRYCOUNT", cfg.MaxDeliveries, "IDLE", 60000).Err(); err != nil {
		t.Fatal(err)
	}
	c := newCounter()
	run(t, b, "risk", func(_ context.Context, d orderflow.Delivery) error { c.add(d); return nil })
	eventually(t, "nothing pending", func() bool { return pending(t, rdb, b, cfg, "risk") == 0 })
	dls, err := b.DeadLetters(context.Background(), 10)
	if err != nil || len(dls) != 1 {
		t.Fatalf("DeadLetters = %v, %v; want the poison", dls, err)
	}
	if d := dls[0]; d.Event.ID != poison.ID || d.Attempts != cfg.MaxDeliveries+1 || !strings.Contains(d.LastError, "limit") {
		t.Errorf("dead letter %+v: want the poison, %d attempts, the limit as reason", d, cfg.MaxDeliveries+1)
	}
	if n := c.count(poison.ID); n != 0 {
		t.Errorf("poison past its limit handled %d times, want 0", n)
	}
}

// Every key of one partition carries the partition's hash tag, so the
// scripts that touch them together run on a Redis Cluster.
func TestKeysShareHashTag(t *testing.T) {
	rdb, cfg, b := setup(t, "risk")
	evs := bustest.Events("o", 50, 50)
	publish(t, b, evs...)
	fail := map[string]bool{evs[0].ID: true}
	var n atomic.Int64
	run(t, b, "risk", func(_ context.Context, d orderflow.Delivery) error {
		n.Add(1)
		if fail[d.ID] {
			return orderflow.Permanent(errors.New("bad"))
		}
		return nil
	})
	eventually(t, "all handled", func() bool { return n.Load() == int64(len(evs)) && pending(t, rdb, b, cfg, "risk") == 0 })
	keys, err := rdb.Keys(context.Background(), cfg.Prefix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, k := range keys {
		rest := strings.TrimPrefix(k, cfg.Prefix+":")
		var p int
		if _, err := fmt.Sscanf(rest, "{%d}", &p); err != nil || p < 0 || p >= cfg.Partitions || strings.Count(k, "{") != 1 {
			t.Errorf("key %q has no partition hash tag", k)
		}
		switch {
		case strings.Contains(k, ":done:"):
			kinds["done"] = true
		case strings.HasSuffix(k, ":dead"):
			kinds["dead"] = true
		default:
			kinds["stream"] = true
		}
	}
	if len(kinds) != 3 {
		t.Errorf("saw key kinds %v, want stream, dead and done", kinds)
	}
}

func TestGoneConsumersForgotten(t *testing.T) {
	rdb, cfg, b := setup(t, "risk")
	evs := bustest.Events("o", 8, 8)
	publish(t, b, evs...)
	ghostRead(t, rdb, b, cfg, "risk")
	ctx := context.Background()
	// The ghost finished its work before it went away.
	for p := range cfg.Partitions {
		msgs, _ := rdb.XRange(ctx, b.Stream(p), "-", "+").Result()
		for _, m := range msgs {
			rdb.XAck(ctx, b.Stream(p), "risk", m.ID)
		}
	}
	cfg.ClaimIdle, cfg.ClaimInterval, cfg.Block = 100*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	run(t, redisstream.New(rdb, cfg), "risk", func(context.Context, orderflow.Delivery) error { return nil })
	names := func() []string {
		var out []string
		for p := range cfg.Partitions {
			cs, err := rdb.XInfoConsumers(ctx, b.Stream(p), "risk").Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				out = append(out, c.Name)
			}
		}
		return out
	}
	eventually(t, "the ghost forgotten on every partition", func() bool {
		for _, n := range names() {
			if n == "ghost" {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond)
	for _, n := range names() {
		if n != "test-0" {
			t.Errorf("consumer %q in the group, want only the live test-0", n)
		}
	}
}

// A redriven event goes back to its own group only: another group that
// handled it already does not see it again.
func TestRedriveOnlyItsGroup(t *testing.T) {
	rdb, cfg, b := setup(t, "risk")
	poison := bustest.Event("p", 0)
	risk, audit := newCounter(), newCounter()
	var healed atomic.Bool
	run(t, b, "risk", func(_ context.Context, d orderflow.Delivery) error {
		risk.add(d)
		if !healed.Load() {
			return orderflow.Permanent(errors.New("bad"))
		}
		return nil
	})
	run(t, b, "audit", func(_ context.Context, d orderflow.Delivery) error { audit.add(d); return nil })
	publish(t, b, poison)
	var dls []orderflow.DeadLetter
	eventually(t, "risk dead-lettered it and audit handled it", func() bool {
		dls, _ = b.DeadLetters(context.Background(), 10)
		return len(dls) == 1 && audit.count(poison.ID) == 1
	})
	healed.Store(true)
	if err := b.Redrive(context.Background(), dls[0].ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "risk handled the redriven event", func() bool { return risk.count(poison.ID) == 2 })
	eventually(t, "nothing pending in either group", func() bool {
		return pending(t, rdb, b, cfg, "risk") == 0 && pending(t, rdb, b, cfg, "audit") == 0
	})
	if n := audit.count(poison.ID); n != 1 {
		t.Errorf("audit handled the event %d times, want 1: the redrive was for risk only", n)
	}
	if d := risk.get(poison.ID); d.Attempt != 1 || d.Headers["traceparent"] != poison.Headers["traceparent"] {
		t.Errorf("redriven delivery %+v, want attempt 1 with the trace header", d)
	}
}

func TestPublishInvalid(t *testing.T) {
	_, _, b := setup(t, "risk")
	for _, tc := range []struct {
		name string
		ev   orderflow.Event
	}{{"NoID", orderflow.Event{OrderID: "o"}}, {"NoOrderID", orderflow.Event{ID: "e"}}} {
		t.Run(tc.name, func(t *testing.T) {
			if err := b.Publish(context.Background(), []orderflow.Event{tc.ev}); orderflow.ErrorCode(err) != orderflow.EInvalid {
				t.Errorf("Publish = %v, want invalid_argument", err)
			}
		})
	}
}

// A republished event is checked against the buckets that can hold its
// marker: every bucket since its creation (less the clock skew allowance),
// not only the current one; a fresh event only against the current one.
func TestDedupChecksBucketsSinceCreation(t *testing.T) {
	rdb, cfg, b := setup(t, "risk")
	ctx := context.Background()
	if cfg.DedupTTL != 0 {
		t.Fatalf("the test assumes the default DedupTTL, got %v", cfg.DedupTTL)
	}
	width := redisstream.DefaultDedupTTL / 4 // the package's doneBuckets
	bucket := func(at time.Time) int64 { return at.UnixNano() / int64(width) }
	now := time.Now()
	old := bustest.Event("old", 0)
	old.CreatedAt = now.Add(-3 * width) // its marker may be three buckets back
	fresh := bustest.Event("fresh", 0)
	fresh.CreatedAt = now
	// Markers left by an earlier ack, three buckets back.
	for _, ev := range []orderflow.Event{old, fresh} {
		key := fmt.Sprintf("%s:done:risk:%d", b.Stream(b.Partition(ev.OrderID)), bucket(now)-3)
		if err := rdb.SAdd(ctx, key, ev.ID).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c := newCounter()
	run(t, b, "risk", func(_ context.Context, d orderflow.Delivery) error { c.add(d); return nil })
	publish(t, b, old, fresh)
	eventually(t, "both acknowledged", func() bool { return pending(t, rdb, b, cfg, "risk") == 0 && c.count(fresh.ID) == 1 })
	if n := c.count(old.ID); n != 0 {
		t.Errorf("event created three buckets ago, marked there, handled %d times; want 0", n)
	}
	// A marker older than the event's creation cannot be its own: the
	// fresh event is checked against the current bucket only.
	if n := c.count(fresh.ID); n != 1 {
		t.Errorf("fresh event handled %d times; want 1", n)
	}
}

// Copies of one event read together pass the marker check together (no
// marker exists yet); the consumer's memo of ids it handled delivers only
// the first.
func TestCopiesInOneReadHandledOnce(t *testing.T) {
	rdb, cfg, b := setup(t, "risk")
	dup := bustest.Event("dup", 0)
	evs := append(bustest.Events("o", 20, 20), dup, dup, dup)
	publish(t, b, evs...)
	c := newCounter()
	run(t, b, "risk", func(_ context.Context, d orderflow.Delivery) error { c.add(d); return nil })
	eventually(t, "all acknowledged", func() bool { return pending(t, rdb, b, cfg, "risk") == 0 && c.count(evs[0].ID) == 1 })
	if n := c.count(dup.ID); n != 1 {
		t.Errorf("event published three times in one call handled %d times, want 1", n)
	}
}
