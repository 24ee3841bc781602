package bustest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

func testAckedNotRedelivered(t *testing.T, h Harness) {
	b := h.Open(t)
	evs := Events("o", 60, 12)
	publish(t, b, evs)
	r := newRecorder()
	stop := consume(t, b.Consumer, "risk", r.handler(nil))
	waitFor(t, "every event acked", func() bool { return r.allAcked(evs) })
	markerDelivered(t, b, r, "a")
	for _, e := range evs {
		ds := r.deliveries(e.ID)
		if len(ds) != 1 {
			t.Fatalf("%s delivered %d times, want once", e.ID, len(ds))
		}
		d := ds[0]
		if d.Group != "risk" || d.Attempt != 1 {
			t.Errorf("%s: group %q attempt %d, want risk, 1", e.ID, d.Group, d.Attempt)
		}
		if d.Type != e.Type || d.OrderID != e.OrderID || string(d.Payload) != string(e.Payload) ||
			!reflect.DeepEqual(d.Headers, e.Headers) || !d.CreatedAt.Equal(e.CreatedAt) || d.Seq == 0 {
			t.Errorf("%s arrived as %+v, want %+v with a seq", e.ID, d.Event, e)
		}
	}
	stop()
	// Acked stays acked across a restart.
	r2 := newRecorder()
	consume(t, b.Restart(t), "risk", r2.handler(nil))
	markerDelivered(t, b, r2, "b")
	for _, e := range evs {
		if n := len(r2.deliveries(e.ID)); n != 0 {
			t.Errorf("%s delivered %d times after a restart, want 0: it was acked", e.ID, n)
		}
	}
}

func testRetry(t *testing.T, h Harness) {
	b := h.Open(t)
	evs := Events("o", 10, 5)
	publish(t, b, evs)
	flaky := evs[3].ID
	r := newRecorder()
	consume(t, b.Consumer, "risk", r.handler(func(d orderflow.Delivery) error {
		if d.ID == flaky && d.Attempt < h.MaxDeliveries {
			return fmt.Errorf("attempt %d: %w", d.Attempt, errFlaky)
		}
		return nil
	}))
	waitFor(t, "every event acked", func() bool { return r.allAcked(evs) })
	ds := r.deliveries(flaky)
	if len(ds) != h.MaxDeliveries {
		t.Fatalf("flaky event delivered %d times, want %d", len(ds), h.MaxDeliveries)
	}
	for i, d := range ds {
		if d.Attempt != i+1 {
			t.Errorf("delivery %d has Attempt %d, want %d", i+1, d.Attempt, i+1)
		}
	}
	markerDelivered(t, b, r, "a")
	if n := len(r.deliveries(flaky)); n != h.MaxDeliveries {
		t.Errorf("flaky event delivered %d times after its success, want %d", n, h.MaxDeliveries)
	}
	dls, err := b.DeadLetters.DeadLetters(ctx(t), 100)
	if err != nil || len(dls) != 0 {
		t.Errorf("DeadLetters = %v, %v; want none: the event succeeded on its last allowed delivery", dls, err)
	}
}

func testPermanent(t *testing.T, h Harness) {
	b := h.Open(t)
	evs := Events("o", 10, 5)
	publish(t, b, evs)
	poison := evs[4]
	r := newRecorder()
	consume(t, b.Consumer, "risk", r.handler(func(d orderflow.Delivery) error {
		if d.ID == poison.ID {
			return orderflow.Permanent(fmt.Errorf("malformed payload of %s", d.ID))
		}
		return nil
	}))
	dl := deadLetter(t, b, poison.ID)
	if dl.Group != "risk" || dl.Attempts != 1 || !strings.Contains(dl.LastError, "malformed payload") || dl.ID == "" {
		t.Errorf("dead letter = %+v; want group risk, 1 attempt, the handler's error, an id", dl)
	}
	if dl.Event.OrderID != poison.OrderID || string(dl.Event.Payload) != string(poison.Payload) ||
		!reflect.DeepEqual(dl.Event.Headers, poison.Headers) || dl.At.IsZero() {
		t.Errorf("dead letter event = %+v, want %+v and a time", dl.Event, poison)
	}
	waitFor(t, "the other events acked", func() bool { return r.allAcked(append(evs[:4:4], evs[5:]...)) })
	markerDelivered(t, b, r, "a")
	if n := len(r.deliveries(poison.ID)); n != 1 {
		t.Errorf("permanent failure delivered %d times, want 1", n)
	}
}

func testMaxDeliveries(t *testing.T, h Harness) {
	b := h.Open(t)
	evs := Events("o", 6, 3)
	publish(t, b, evs)
	poison := evs[1]
	r := newRecorder()
	consume(t, b.Consumer, "risk", r.handler(func(d orderflow.Delivery) error {
		if d.ID == poison.ID {
			return errFlaky
		}
		return nil
	}))
	dl := deadLetter(t, b, poison.ID)
	if dl.Attempts != h.MaxDeliveries || !strings.Contains(dl.LastError, errFlaky.Error()) {
		t.Errorf("dead letter attempts %d, error %q; want %d and %q", dl.Attempts, dl.LastError, h.MaxDeliveries, errFlaky)
	}
	// The later event of the poisoned order goes ahead once it is given up.
	// Waited for, not checked once: the dead letter is written before that
	// event's delivery starts, and a marker of another order does not wait
	// for it.
	waitFor(t, "every event but the poison acked", func() bool {
		return r.allAcked(evs[:1]) && r.allAcked(evs[2:])
	})
	markerDelivered(t, b, r, "a")
	ds := r.deliveries(poison.ID)
	if len(ds) != h.MaxDeliveries {
		t.Fatalf("poison delivered %d times, want MaxDeliveries = %d", len(ds), h.MaxDeliveries)
	}
	for i, d := range ds {
		if d.Attempt != i+1 {
			t.Errorf("delivery %d has Attempt %d, want %d", i+1, d.Attempt, i+1)
		}
	}
}

func testRedrive(t *testing.T, h Harness) {
	b := h.Open(t)
	evs := Events("o", 4, 2)
	publish(t, b, evs)
	poison := evs[2]
	var healed atomic.Bool
	r := newRecorder()
	consume(t, b.Consumer, "risk", r.handler(func(d orderflow.Delivery) error {
		if d.ID == poison.ID && !healed.Load() {
			return orderflow.Permanent(errFlaky)
		}
		return nil
	}))
	dl := deadLetter(t, b, poison.ID)
	healed.Store(true)
	if err := b.DeadLetters.Redrive(ctx(t), dl.ID); err != nil {
		t.Fatalf("Redrive(%s): %v", dl.ID, err)
	}
	waitFor(t, "the redriven event handled", func() bool { return r.ackedCount(poison.ID) == 1 })
	ds := r.deliveries(poison.ID)
	if got := ds[len(ds)-1]; got.Attempt != 1 || string(got.Payload) != string(poison.Payload) ||
		!reflect.DeepEqual(got.Headers, poison.Headers) || got.Group != "risk" {
		t.Errorf("redriven delivery = %+v, want attempt 1 of %+v to group risk", got, poison)
	}
	dls, err := b.DeadLetters.DeadLetters(ctx(t), 100)
	if err != nil || len(dls) != 0 {
		t.Errorf("DeadLetters after redrive = %v, %v; want none", dls, err)
	}
	if err := b.DeadLetters.Redrive(ctx(t), dl.ID); orderflow.ErrorCode(err) != orderflow.ENotFound {
		t.Errorf("second Redrive(%s) = %v, want not_found", dl.ID, err)
	}
	markerDelivered(t, b, r, "a")
	if n := len(r.deliveries(poison.ID)); n != 2 {
		t.Errorf("poison delivered %d times, want 2 (dead-lettered, then redriven once)", n)
	}
}

func testRedriveUnknown(t *testing.T, h Harness) {
	b := h.Open(t)
	for _, id := range []string{"", "0", "999999", "no-such-id", "1-0"} {
		if err := b.DeadLetters.Redrive(ctx(t), id); orderflow.ErrorCode(err) != orderflow.ENotFound {
			t.Errorf("Redrive(%q) = %v, want not_found", id, err)
		}
	}
	dls, err := b.DeadLetters.DeadLetters(ctx(t), 0)
	if err != nil || len(dls) != 0 {
		t.Errorf("DeadLetters of a new bus = %v, %v; want none", dls, err)
	}
}

// testOrdering checks that one order's events are never handled at once nor
// out of order, also across retries, while many orders run in parallel.
func testOrdering(t *testing.T, h Harness) {
	b := h.Open(t)
	const orders, perOrder = 100, 6
	evs := Events("o", orders*perOrder, orders)
	index := map[string]int{} // event id → its place among its order's events
	for k, e := range evs {
		index[e.ID] = k / orders
	}
	var (
		mu       sync.Mutex
		busy     = map[string]bool{}
		next     = map[string]int{} // the index each order must see next
		problems []string
	)
	r := newRecorder()
	consume(t, b.Consumer, "risk", r.handler(func(d orderflow.Delivery) error {
		mu.Lock()
		if busy[d.OrderID] {
			problems = append(problems, d.ID+" handled while its order was busy")
		}
		if i := index[d.ID]; i != next[d.OrderID] {
			problems = append(problems, fmt.Sprintf("%s (index %d) handled before index %d succeeded", d.ID, i, next[d.OrderID]))
		}
		busy[d.OrderID] = true
		mu.Unlock()
		time.Sleep(time.Duration(len(d.ID)%3) * 100 * time.Microsecond)
		fail := index[d.ID]%3 == 1 && d.Attempt == 1 // every third event fails once
		mu.Lock()
		busy[d.OrderID] = false
		if !fail {
			next[d.OrderID]++
		}
		mu.Unlock()
		if fail {
			return errFlaky
		}
		return nil
	}))
	publish(t, b, evs)
	waitFor(t, "every event acked", func() bool { return r.allAcked(evs) })
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("%d ordering violations, first: %v", len(problems), problems[:min(5, len(problems))])
	}
}

// testShare checks that two consumers of one group split its events with
// nothing lost and, in the happy path, nothing handled twice.
func testShare(t *testing.T, h Harness) {
	b := h.Open(t)
	evs := Events("o", 2000, 400)
	var seenA, seenB atomic.Int64
	both := make(chan struct{})
	var bothOnce sync.Once
	// Each consumer's first handling waits until the other has one too (or
	// a while passed): whatever the scheduling, one consumer cannot take
	// everything before the other starts.
	gate := func(mine, other *atomic.Int64) func(orderflow.Delivery) error {
		return func(orderflow.Delivery) error {
			mine.Add(1)
			if other.Load() > 0 {
				bothOnce.Do(func() { close(both) })
			}
			select {
			case <-both:
			case <-time.After(5 * time.Second): // give up gating; the check below reports it
				bothOnce.Do(func() { close(both) })
			}
			return nil
		}
	}
	ra, rb := newRecorder(), newRecorder()
	consume(t, b.Consumer, "risk", ra.handler(gate(&seenA, &seenB)))
	consume(t, b.Consumer, "risk", rb.handler(gate(&seenB, &seenA)))
	publish(t, b, evs)
	waitFor(t, "every event handled by one of the consumers", func() bool {
		ra.mu.Lock()
		defer ra.mu.Unlock()
		rb.mu.Lock()
		defer rb.mu.Unlock()
		for _, e := range evs {
			if ra.acked[e.ID]+rb.acked[e.ID] == 0 {
				return false
			}
		}
		return true
	})
	markerDelivered(t, b, &shared{ra, rb}, "a")
	if ra.total() == 0 || rb.total() == 0 {
		t.Errorf("consumer A handled %d, B %d: the work was not shared", ra.total(), rb.total())
	}
	dup := 0
	for _, e := range evs {
		if n := len(ra.deliveries(e.ID)) + len(rb.deliveries(e.ID)); n != 1 {
			dup++
		}
	}
	if dup > 0 {
		t.Errorf("%d of %d events delivered more than once in the happy path", dup, len(evs))
	}
}

// shared lets markerDelivered wait on either of two recorders.
type shared struct{ a, b *recorder }

func (s *shared) ackedCount(id string) int { return s.a.ackedCount(id) + s.b.ackedCount(id) }

func testGroups(t *testing.T, h Harness) {
	b := h.Open(t)
	evs := Events("o", 300, 30)
	publish(t, b, evs)
	r1, r2 := newRecorder(), newRecorder()
	consume(t, b.Consumer, "risk", r1.handler(nil))
	consume(t, b.Consumer, "audit", r2.handler(nil))
	waitFor(t, "both groups acked every event", func() bool { return r1.allAcked(evs) && r2.allAcked(evs) })
	for _, r := range []*recorder{r1, r2} {
		if n := r.total(); n != len(evs) {
			t.Errorf("a group saw %d deliveries, want %d", n, len(evs))
		}
	}
}

func testRestart(t *testing.T, h Harness) {
	b := h.Open(t)
	evs := Events("o", 40, 40)
	publish(t, b, evs)
	stuck := map[string]bool{evs[3].ID: true, evs[17].ID: true, evs[31].ID: true}
	release := make(chan struct{})
	var entered atomic.Int64
	r := newRecorder()
	stop := consume(t, b.Consumer, "risk", r.handler(func(d orderflow.Delivery) error {
		if stuck[d.ID] {
			entered.Add(1)
			<-release // held until the consumer is being stopped, then failed
			return errFlaky
		}
		return nil
	}))
	waitFor(t, "the stuck events entered and the rest acked", func() bool {
		acked := 0
		for _, e := range evs {
			acked += min(r.ackedCount(e.ID), 1)
		}
		return entered.Load() == int64(len(stuck)) && acked == len(evs)-len(stuck)
	})
	go func() { time.Sleep(50 * time.Millisecond); close(release) }()
	stop()
	r2 := newRecorder()
	consume(t, b.Restart(t), "risk", r2.handler(nil))
	waitFor(t, "the unacked events delivered again after the restart", func() bool {
		for id := range stuck {
			if r2.ackedCount(id) == 0 {
				return false
			}
		}
		return true
	})
	markerDelivered(t, b, r2, "a")
	for _, e := range evs {
		if n := len(r2.deliveries(e.ID)); !stuck[e.ID] && n != 0 {
			t.Errorf("%s was acked before the restart but delivered %d times after it", e.ID, n)
		}
	}
}

func testVolume(t *testing.T, h Harness) {
	n := h.Events
	if n == 0 {
		n = 10000
		if testing.Short() {
			n = 1000
		}
	}
	b := h.Open(t)
	evs := Events("o", n, n/10+1)
	r := newRecorder()
	stop := consume(t, b.Consumer, "risk", r.handler(nil))
	publish(t, b, evs)
	waitFor(t, fmt.Sprintf("%d events acked", n), func() bool { return r.total() >= n && r.allAcked(evs) })
	markerDelivered(t, b, r, "a")
	stop()
	r2 := newRecorder()
	consume(t, b.Restart(t), "risk", r2.handler(nil))
	markerDelivered(t, b, r2, "b")
	lost, dup := 0, 0
	for _, e := range evs {
		switch k := len(r.deliveries(e.ID)) + len(r2.deliveries(e.ID)); {
		case k == 0:
			lost++
		case k > 1:
			dup++
		}
	}
	if lost != 0 || dup != 0 {
		t.Fatalf("%d events: %d lost, %d duplicated; want 0 and 0", n, lost, dup)
	}
}

func testInvalid(t *testing.T, h Harness) {
	b := h.Open(t)
	nop := func(context.Context, orderflow.Delivery) error { return nil }
	for _, tc := range []struct {
		name  string
		group string
		h     orderflow.Handler
	}{{"EmptyGroup", "", nop}, {"NilHandler", "risk", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			c, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if err := b.Consumer.Consume(c, tc.group, tc.h); orderflow.ErrorCode(err) != orderflow.EInvalid {
				t.Errorf("Consume = %v, want invalid_argument", err)
			}
		})
	}
}
