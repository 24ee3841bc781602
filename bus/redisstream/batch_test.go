package redisstream_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/bus/bustest"
	"github.com/orderflow/orderflow/bus/redisstream"
	"github.com/redis/go-redis/v9"
)

// onePartition returns n events of distinct orders that all map to one
// partition of b, so one Publish packs them together.
func onePartition(b *redisstream.Bus, prefix string, n int) []orderflow.Event {
	var evs []orderflow.Event
	for i := 0; len(evs) < n; i++ {
		e := bustest.Event(fmt.Sprintf("%s%d", prefix, i), i)
		if b.Partition(e.OrderID) == 0 {
			evs = append(evs, e)
		}
	}
	return evs
}

// failing returns a handler that counts every delivery in c and fails
// event id with err until healed is set.
func failing(c *counter, id string, healed *atomic.Bool, err error) orderflow.Handler {
	return func(_ context.Context, d orderflow.Delivery) error {
		c.add(d)
		if d.ID == id && !healed.Load() {
			return err
		}
		return nil
	}
}

// entries returns the stream entries of partition p.
func entries(t *testing.T, rdb *redis.Client, b *redisstream.Bus, p int) []redis.XMessage {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), b.Stream(p), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// TestPublishPacksOnePartitionsEvents: the events of one call that share a
// partition go into entries of up to EntryEvents, in call order; other
// partitions' events into their own entries; a call of one event into an
// entry of one.
func TestPublishPacksOnePartitionsEvents(t *testing.T) {
	for _, tc := range []struct {
		name        string
		entryEvents int
		events      int
		payload     int   // bytes per event, 0 for bustest's
		want        []int // events per entry of partition 0
	}{
		{"AllInOne", 0, 5, 0, []int{5}},
		{"SplitAtEntryEvents", 2, 5, 0, []int{2, 2, 1}},
		{"OneEventPerEntry", 1, 3, 0, []int{1, 1, 1}},
		{"Single", 0, 1, 0, []int{1}},
		// An entry holds at most 256 KiB of packed events, but at least one.
		{"SplitAtEntryBytes", 0, 4, 100 << 10, []int{2, 2}},
		{"HugeEventAlone", 0, 2, 300 << 10, []int{1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb := MustClient(t)
			cfg := testConfig(MustPrefix(t, rdb))
			cfg.EntryEvents = tc.entryEvents
			b := redisstream.New(rdb, cfg)
			evs := onePartition(b, "o", tc.events)
			if tc.payload > 0 {
				for i := range evs {
					evs[i].Payload = make([]byte, tc.payload)
				}
			}
			// An event of another partition in between does not split them.
			other := bustest.Event("x", 99)
			for b.Partition(other.OrderID) == 0 {
				other.OrderID += "x"
			}
			all := slices.Insert(slices.Clone(evs), 1, other)
			publish(t, b, all...)
			var got []string
			var sizes []int
			for _, m := range entries(t, rdb, b, 0) {
				es := redisstream.EventsOf(m)
				sizes = append(sizes, len(es))
				for _, e := range es {
					got = append(got, e.ID)
				}
			}
			var want []string
			for _, e := range evs {
				want = append(want, e.ID)
			}
			if !slices.Equal(sizes, tc.want) || !slices.Equal(got, want) {
				t.Errorf("partition 0 entries hold %v events: %v; want %v: %v", sizes, got, tc.want, want)
			}
			if n := len(entries(t, rdb, b, b.Partition(other.OrderID))); n != 1 {
				t.Errorf("the other partition has %d entries, want 1", n)
			}
		})
	}
}

// TestBatchEntryWaitsForItsFailingEvent: one event of a batch entry fails
// a while; its siblings are handled once, marked done at once, and the
// entry stays pending until the failing event succeeds.
func TestBatchEntryWaitsForItsFailingEvent(t *testing.T) {
	rdb, cfg, _ := setup(t, "risk")
	cfg.MaxDeliveries = 1000 // never reached: the test heals it first
	b := redisstream.New(rdb, cfg)
	evs := onePartition(b, "o", 6)
	flaky := evs[2].ID
	var heal atomic.Bool
	c := newCounter()
	run(t, b, "risk", failing(c, flaky, &heal, errors.New("dependency down")))
	publish(t, b, evs...)
	if n := len(entries(t, rdb, b, 0)); n != 1 {
		t.Fatalf("%d entries, want the batch in one", n)
	}
	eventually(t, "siblings handled, flaky retried", func() bool {
		for _, e := range evs {
			if c.count(e.ID) == 0 {
				return false
			}
		}
		return c.count(flaky) >= 2
	})
	if n := pending(t, rdb, b, cfg, "risk"); n != 1 {
		t.Errorf("%d pending while an event of the batch fails, want its entry", n)
	}
	heal.Store(true)
	eventually(t, "the batch acknowledged", func() bool { return pending(t, rdb, b, cfg, "risk") == 0 })
	for _, e := range evs {
		if n := c.count(e.ID); e.ID != flaky && n != 1 {
			t.Errorf("%s handled %d times, want 1", e.ID, n)
		}
	}
	if d := c.get(flaky); d.Attempt < 3 {
		t.Errorf("flaky succeeded as attempt %d, want at least 3", d.Attempt)
	}
}

// TestBatchEntryRedeliveredSkipsHandled: a consumer stops while one event
// of a batch entry fails; a restarted consumer takes the entry back and
// handles only that event: the others are done and marked.
func TestBatchEntryRedeliveredSkipsHandled(t *testing.T) {
	rdb, cfg, _ := setup(t, "risk")
	cfg.MaxDeliveries = 1000
	b := redisstream.New(rdb, cfg)
	evs := onePartition(b, "o", 6)
	flaky := evs[3].ID
	c := newCounter()
	h := func(fail bool) orderflow.Handler {
		return func(_ context.Context, d orderflow.Delivery) error {
			c.add(d)
			if fail && d.ID == flaky {
				return errors.New("dependency down")
			}
			return nil
		}
	}
	stop := run(t, b, "risk", h(true))
	publish(t, b, evs...)
	eventually(t, "siblings handled, flaky failed", func() bool {
		for _, e := range evs {
			if c.count(e.ID) == 0 {
				return false
			}
		}
		return true
	})
	stop()
	if n := pending(t, rdb, b, cfg, "risk"); n != 1 {
		t.Fatalf("%d pending after the stop, want the batch entry", n)
	}
	failed := c.count(flaky)
	run(t, redisstream.New(MustClient(t), cfg), "risk", h(false))
	eventually(t, "the batch acknowledged", func() bool { return pending(t, rdb, b, cfg, "risk") == 0 })
	for _, e := range evs {
		want := 1
		if e.ID == flaky {
			want = failed + 1
		}
		if n := c.count(e.ID); n != want {
			t.Errorf("%s handled %d times, want %d", e.ID, n, want)
		}
	}
}

// TestBatchEventDeadLettersAlone: a permanent failure dead-letters that
// event alone; its siblings are handled and the entry acknowledged. Redrive
// brings back that event only.
func TestBatchEventDeadLettersAlone(t *testing.T) {
	rdb, cfg, b := setup(t, "risk")
	evs := onePartition(b, "o", 5)
	poison := evs[1].ID
	var healed atomic.Bool
	c := newCounter()
	run(t, b, "risk", failing(c, poison, &healed, orderflow.Permanent(errors.New("bad amount"))))
	publish(t, b, evs...)
	var dls []orderflow.DeadLetter
	eventually(t, "the batch settled", func() bool {
		var err error
		dls, err = b.DeadLetters(context.Background(), 10)
		return err == nil && len(dls) == 1 && pending(t, rdb, b, cfg, "risk") == 0
	})
	if d := dls[0]; d.Event.ID != poison || d.Group != "risk" || d.Attempts != 1 {
		t.Errorf("dead letter %+v: want %s of risk after 1 attempt", d, poison)
	}
	for _, e := range evs {
		if n := c.count(e.ID); n != 1 {
			t.Errorf("%s handled %d times, want 1", e.ID, n)
		}
	}
	healed.Store(true)
	if err := b.Redrive(context.Background(), dls[0].ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the redriven event handled", func() bool { return c.count(poison) == 2 })
	eventually(t, "nothing pending", func() bool { return pending(t, rdb, b, cfg, "risk") == 0 })
	for _, e := range evs {
		if n := c.count(e.ID); e.ID != poison && n != 1 {
			t.Errorf("%s handled %d times after the redrive, want 1", e.ID, n)
		}
	}
}

// TestBatchEventDeadLetteredOnceAcrossRedelivery: a consumer dead-letters
// one event of a batch entry and stops while a sibling still fails; the
// consumer that takes the entry back meets the dead-lettered event again
// and settles it without a second dead letter.
func TestBatchEventDeadLetteredOnceAcrossRedelivery(t *testing.T) {
	rdb, cfg, _ := setup(t, "risk")
	cfg.MaxDeliveries = 1000
	b := redisstream.New(rdb, cfg)
	evs := onePartition(b, "o", 4)
	poison, flaky := evs[0].ID, evs[2].ID
	c := newCounter()
	h := func(flakyFails bool) orderflow.Handler {
		return func(_ context.Context, d orderflow.Delivery) error {
			c.add(d)
			switch {
			case d.ID == poison:
				return orderflow.Permanent(errors.New("bad amount"))
			case d.ID == flaky && flakyFails:
				return errors.New("dependency down")
			}
			return nil
		}
	}
	deadLetters := func() []orderflow.DeadLetter {
		dls, err := b.DeadLetters(context.Background(), 10)
		if err != nil {
			t.Fatal(err)
		}
		return dls
	}
	stop := run(t, b, "risk", h(true))
	publish(t, b, evs...)
	eventually(t, "poison dead-lettered, flaky retried", func() bool {
		return len(deadLetters()) == 1 && c.count(flaky) >= 2
	})
	stop()
	if n := pending(t, rdb, b, cfg, "risk"); n != 1 {
		t.Fatalf("%d pending after the stop, want the batch entry", n)
	}
	run(t, redisstream.New(MustClient(t), cfg), "risk", h(false))
	eventually(t, "the batch acknowledged", func() bool { return pending(t, rdb, b, cfg, "risk") == 0 })
	if dls := deadLetters(); len(dls) != 1 || dls[0].Event.ID != poison {
		t.Errorf("dead letters %+v: want %s once", dls, poison)
	}
	if n := c.count(poison); n != 2 {
		t.Errorf("poison handled %d times, want 2: once per delivery of its entry", n)
	}
}

// TestReadTakesAboutItsRoom: a consumer that meets a backlog of batch
// entries takes about its MaxInFlight of it, not BatchSize entries of
// every partition; a second consumer of the group handles the rest while
// the first one's handlers are stuck.
func TestReadTakesAboutItsRoom(t *testing.T) {
	rdb, cfg, _ := setup(t, "risk")
	cfg.MaxInFlight, cfg.Concurrency = 64, 4 // BatchSize stays 256
	b := redisstream.New(rdb, cfg)
	const n = 2000
	publish(t, b, bustest.Events("o", n, 400)...) // about 32 entries of 16 per partition
	stuck := make(chan struct{})
	defer close(stuck)
	var first, second atomic.Int64
	run(t, b, "risk", func(ctx context.Context, _ orderflow.Delivery) error {
		first.Add(1)
		select {
		case <-stuck:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	eventually(t, "the first consumer's handlers busy", func() bool { return first.Load() == int64(cfg.Concurrency) })
	run(t, b, "risk", func(context.Context, orderflow.Delivery) error {
		second.Add(1)
		return nil
	})
	// The first consumer keeps at most its room: the read is sized for
	// full entries, which is what the backlog holds.
	room := int64(cfg.MaxInFlight / redisstream.DefaultEntryEvents)
	eventually(t, "the second consumer handles the rest", func() bool {
		return second.Load() >= n-int64(cfg.MaxInFlight) && pending(t, rdb, b, cfg, "risk") <= room
	})
}

// TestBatchLargerThanTheConsumersRoom: a publisher with a larger
// EntryEvents than the consumer's (a rollout of a new setting) writes an
// entry bigger than the consumer's room; the consumer takes it in chunks,
// in order, instead of blocking on its own queues.
func TestBatchLargerThanTheConsumersRoom(t *testing.T) {
	rdb, cfg, _ := setup(t, "risk")
	pubCfg := cfg
	pubCfg.EntryEvents = 500
	pub := redisstream.New(rdb, pubCfg)
	cfg.EntryEvents, cfg.BatchSize, cfg.MaxInFlight, cfg.Concurrency = 1, 1, 1, 2 // room: 6 events
	sub := redisstream.New(rdb, cfg)
	const n = 200
	var evs []orderflow.Event
	for i := range n {
		evs = append(evs, bustest.Event("one", i)) // one order: one entry
	}
	var mu sync.Mutex
	var got []string
	run(t, sub, "risk", func(_ context.Context, d orderflow.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, d.ID)
		return nil
	})
	publish(t, pub, evs...)
	eventually(t, "all handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= n && pending(t, rdb, sub, cfg, "risk") == 0
	})
	mu.Lock()
	defer mu.Unlock()
	for i, id := range got {
		if i >= n || id != evs[i].ID {
			t.Fatalf("delivery %d is %s, want %d events in publish order", i, id, n)
		}
	}
	if len(got) != n {
		t.Errorf("%d deliveries, want %d", len(got), n)
	}
}
