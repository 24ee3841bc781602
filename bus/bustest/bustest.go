// Package bustest is the contract every orderflow.Consumer with its
// orderflow.DeadLetters keeps: one suite, run against each bus (bus/sqlbus,
// and the Redis Streams bus), so the risk engine runs unchanged on either.
// It uses only the interfaces plus a Harness that says how to publish.
package bustest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// Bus is one bus under test, as Harness.Open returns it.
type Bus struct {
	// Consumer is the bus's consumer. Consume calls on it with the same group
	// share that group's events, as consumers of one process do.
	Consumer orderflow.Consumer
	// DeadLetters lists and redrives what Consumer gave up on.
	DeadLetters orderflow.DeadLetters
	// Publish appends evs, in order, as the order service's outbox would
	// (the suite sets ID, Type, OrderID, Payload, Headers and CreatedAt). It
	// may run while consumers do; it returns once they can see the events.
	Publish func(ctx context.Context, evs ...orderflow.Event) error
	// Restart returns a consumer over the same durable state, as a restarted
	// process would build it (sqlbus: a new Bus on the same store; Redis: a
	// new client). The suite calls it only when no Consume is running.
	Restart func(t *testing.T) orderflow.Consumer
}

// Harness builds the buses the suite tests.
type Harness struct {
	// Open returns a new, empty bus for one subtest and registers its
	// cleanup with t.Cleanup.
	Open func(t *testing.T) Bus
	// MaxDeliveries is the delivery limit Open configures. Open should also
	// configure a short back-off (milliseconds) and a short shutdown grace,
	// so the suite runs in seconds.
	MaxDeliveries int
	// Events is the size of the happy-path volume test: 10,000 when zero,
	// a tenth of that under -short.
	Events int
}

// Run runs the contract against buses made by h.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Open == nil || h.MaxDeliveries < 2 {
		t.Fatal("bustest: Harness needs Open and MaxDeliveries >= 2")
	}
	cases := []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"AckedNotRedelivered", testAckedNotRedelivered},
		{"ErrorRedeliveredWithNextAttempt", testRetry},
		{"PermanentDeadLettersAtOnce", testPermanent},
		{"MaxDeliveriesDeadLetters", testMaxDeliveries},
		{"Redrive", testRedrive},
		{"RedriveUnknownNotFound", testRedriveUnknown},
		{"OrderEventsSequential", testOrdering},
		{"ConsumersShareGroup", testShare},
		{"GroupsEachGetAll", testGroups},
		{"RestartRedeliversUnacked", testRestart},
		{"VolumeNoLossNoDuplicate", testVolume},
		{"InvalidArguments", testInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, h) })
	}
}

// wait bounds every wait of the suite: far above what a healthy bus needs,
// so a slow shared machine does not fail it, yet a lost event fails the test
// instead of hanging it.
const wait = 30 * time.Second

// ctx bounds a test's calls.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*wait)
	t.Cleanup(cancel)
	return c
}

// Event returns the i-th event of orderID, with a trace header and a payload
// naming both, so the suite can check what arrives.
func Event(orderID string, i int) orderflow.Event {
	return orderflow.Event{
		ID:        fmt.Sprintf("evt_%s_%d", orderID, i),
		Type:      orderflow.EventOrderCreated,
		OrderID:   orderID,
		Payload:   fmt.Appendf(nil, `{"order_id":%q,"i":%d}`, orderID, i),
		Headers:   map[string]string{"traceparent": fmt.Sprintf("00-%032x-%016x-01", i+1, i+1)},
		CreatedAt: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC).Add(time.Duration(i) * time.Millisecond),
	}
}

// Events returns n events spread over orders orders, interleaved: event k
// belongs to order k%orders, so one order's events are far apart in the log.
func Events(prefix string, n, orders int) []orderflow.Event {
	evs := make([]orderflow.Event, n)
	for k := range evs {
		evs[k] = Event(fmt.Sprintf("%s%d", prefix, k%orders), k)
	}
	return evs
}

// publish publishes evs in chunks, failing the test on error.
func publish(t *testing.T, b Bus, evs []orderflow.Event) {
	t.Helper()
	for len(evs) > 0 {
		n := min(len(evs), 500)
		if err := b.Publish(ctx(t), evs[:n]...); err != nil {
			t.Fatalf("publish: %v", err)
		}
		evs = evs[n:]
	}
}

// consume runs c.Consume in the background and returns a stop function that
// cancels it and waits for it to return, failing the test on an error. The
// test's cleanup stops it too.
func consume(t *testing.T, c orderflow.Consumer, group string, h orderflow.Handler) (stop func()) {
	t.Helper()
	cctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Consume(cctx, group, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Consume(%s) returned %v, want nil after its context ended", group, err)
				}
			case <-time.After(wait):
				t.Errorf("Consume(%s) did not return within %v of its context ending", group, wait)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds or the suite's wait passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", wait, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recorder keeps every delivery a handler saw.
type recorder struct {
	mu    sync.Mutex
	all   []orderflow.Delivery
	byID  map[string][]orderflow.Delivery
	acked map[string]int // successful handlings per event id
}

func newRecorder() *recorder {
	return &recorder{byID: map[string][]orderflow.Delivery{}, acked: map[string]int{}}
}

// handler records each delivery and returns fail(d), nil meaning success.
func (r *recorder) handler(fail func(d orderflow.Delivery) error) orderflow.Handler {
	return func(ctx context.Context, d orderflow.Delivery) error {
		var err error
		if fail != nil {
			err = fail(d)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.all = append(r.all, d)
		r.byID[d.ID] = append(r.byID[d.ID], d)
		if err == nil {
			r.acked[d.ID]++
		}
		return err
	}
}

func (r *recorder) deliveries(id string) []orderflow.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]orderflow.Delivery(nil), r.byID[id]...)
}

func (r *recorder) ackedCount(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.acked[id]
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.all)
}

// allAcked reports whether every event of evs was handled successfully.
func (r *recorder) allAcked(evs []orderflow.Event) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range evs {
		if r.acked[e.ID] == 0 {
			return false
		}
	}
	return true
}

// markerDelivered publishes a fresh event and waits until r has it: once a
// bus delivered an event published last, it has had every chance to
// redeliver what came before.
func markerDelivered(t *testing.T, b Bus, r interface{ ackedCount(id string) int }, name string) {
	t.Helper()
	m := Event("marker-"+name, 0)
	publish(t, b, []orderflow.Event{m})
	waitFor(t, "the marker event "+m.ID, func() bool { return r.ackedCount(m.ID) > 0 })
}

// deadLetter waits for the dead letter of event id and returns it.
func deadLetter(t *testing.T, b Bus, id string) orderflow.DeadLetter {
	t.Helper()
	var found orderflow.DeadLetter
	waitFor(t, "dead letter of "+id, func() bool {
		dls, err := b.DeadLetters.DeadLetters(ctx(t), 1000)
		if err != nil {
			t.Fatalf("DeadLetters: %v", err)
		}
		for _, d := range dls {
			if d.Event.ID == id {
				found = d
				return true
			}
		}
		return false
	})
	return found
}

// errFlaky is the suite's transient handler failure.
var errFlaky = errors.New("bustest: flaky dependency")
