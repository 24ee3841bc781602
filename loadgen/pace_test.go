package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/risk/synth"
)

func TestSlotsDue(t *testing.T) {
	for _, tc := range []struct {
		elapsed time.Duration
		rate    float64
		want    int64
	}{
		{0, 100, 1},
		{9 * time.Millisecond, 100, 1},
		{10 * time.Millisecond, 100, 2},
		{time.Second, 100, 101},
		{time.Second, 0.5, 1},
		{2 * time.Second, 0.5, 2},
		{time.Minute, 1000, 60_001},
	} {
		if got := slotsDue(tc.elapsed, tc.rate); got != tc.want {
			t.Errorf("slotsDue(%v, %v) = %d, want %d", tc.elapsed, tc.rate, got, tc.want)
		}
	}
}

func TestTotalSlots(t *testing.T) {
	for _, tc := range []struct {
		name     string
		duration time.Duration
		orders   int64
		rate     float64
		want     int64
	}{
		{"DurationOnly", 10 * time.Second, 0, 100, 1000},
		{"DurationRoundsUp", 1500 * time.Millisecond, 0, 1, 2},
		{"OrdersOnly", 0, 42, 100, 42},
		{"OrdersFirst", 10 * time.Second, 42, 100, 42},
		{"DurationFirst", time.Second, 1000, 100, 100},
		{"Neither", 0, 0, 100, 1<<63 - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &runner{cfg: Config{Duration: tc.duration, Orders: tc.orders, Rate: tc.rate}}
			if got := r.totalSlots(); got != tc.want {
				t.Errorf("totalSlots = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestPaceDropsWhenSaturated counts instead of timing: a server that holds
// every create until released keeps Concurrency creates in flight, so of 50
// slots all due at once exactly Concurrency are sent and the rest dropped,
// however fast or slow the machine is.
func TestPaceDropsWhenSaturated(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		http.Error(w, `{"error":{"code":"invalid_argument","message":"x","field":""}}`, http.StatusBadRequest)
	}))
	defer srv.Close()
	defer once.Do(func() { close(release) })

	cfg := Config{URL: srv.URL, Rate: 1e9, Orders: 50, Concurrency: 5, Seed: 1}
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	r := newRunner(cfg)
	r.c = &client{base: srv.URL, hc: &http.Client{Transport: tr}, timeout: time.Minute, col: r.col}
	var senders sync.WaitGroup
	r.pace(context.Background(), time.Now(), &senders)
	sent, dropped := r.col.sent.Load(), r.col.dropped.Load()
	once.Do(func() { close(release) })
	senders.Wait()
	if sent != 5 || dropped != 45 {
		t.Errorf("sent %d, dropped %d: want 5 sent (the concurrency) and 45 dropped", sent, dropped)
	}
	if got := r.col.failed; got != 5 {
		t.Errorf("failed %d, want the 5 answered 400 (not retried)", got)
	}
}

// TestPaceOffersEverySlot: an idle server takes every slot at a rate the
// machine can keep, and the pacer stops at the slot count.
func TestPaceOffersEverySlot(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"code":"invalid_argument","message":"x","field":""}}`, http.StatusBadRequest)
	}))
	defer srv.Close()
	cfg := Config{URL: srv.URL, Rate: 500, Orders: 30, Concurrency: 64, Seed: 1}
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	r := newRunner(cfg)
	r.c = &client{base: srv.URL, hc: &http.Client{Transport: tr}, timeout: time.Minute, col: r.col}
	var senders sync.WaitGroup
	r.pace(context.Background(), time.Now(), &senders)
	senders.Wait()
	if o, s, d := r.col.offered.Load(), r.col.sent.Load(), r.col.dropped.Load(); o != 30 || s+d != 30 {
		t.Errorf("offered %d, sent %d, dropped %d: want 30 offered and accounted for", o, s, d)
	}
	if got := r.col.errors["create"]["invalid_argument"]; got != r.col.sent.Load() {
		t.Errorf("invalid_argument counted %d times, want once per sent order (%d): 400 is not retried", got, r.col.sent.Load())
	}
}

func TestPollInterval(t *testing.T) {
	for _, tc := range []struct{ age, want time.Duration }{
		{0, minPoll},
		{20 * time.Millisecond, minPoll},
		{100 * time.Millisecond, 25 * time.Millisecond},
		{time.Hour, maxPoll},
	} {
		if got := pollInterval(tc.age); got != tc.want {
			t.Errorf("pollInterval(%v) = %v, want %v", tc.age, got, tc.want)
		}
	}
}

// TestAdversaryKeepsStreamRegion: the interactive adversary replaces the
// stream's adversarial user with the same user, amount, region and
// currency, and the stream's scripted retries are skipped.
func TestAdversaryKeepsStreamRegion(t *testing.T) {
	const seed = 4 // its first order opens an adversarial episode
	stream := synth.Generate(synth.Config{Seed: seed, UserPrefix: "u"}, 200)
	first := stream[0]
	if first.Pattern != synth.Adversarial {
		t.Fatalf("seed %d opens with %s; the test needs an adversary first", seed, first.Pattern)
	}
	r := newRunner(Config{Seed: seed, UserPrefix: "u"})
	o, adv := r.next()
	if adv == nil || o.UserID != first.UserID || o.AmountMinor != first.AmountMinor ||
		o.Region != first.Region || o.Currency != first.Currency {
		t.Fatalf("first order %s %d %s %s (adversary %v), want the stream's %s %d %s %s",
			o.UserID, o.AmountMinor, o.Region, o.Currency, adv != nil, first.UserID, first.AmountMinor, first.Region, first.Currency)
	}
	retry := adv.attempt(r.col)
	if retry.Region != first.Region || retry.AmountMinor >= first.AmountMinor {
		t.Errorf("retry %s %d, want %s and cheaper than %d", retry.Region, retry.AmountMinor, first.Region, first.AmountMinor)
	}
	for range 150 {
		if o, _ := r.next(); o.UserID == first.UserID {
			t.Fatalf("the stream's scripted retry %s of the adversary was sent", o.ID)
		}
	}
}
