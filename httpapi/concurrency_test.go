package httpapi_test

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"
)

// verdict is what a callback says; two callbacks under one key with equal
// verdicts are duplicates, otherwise in conflict.
type verdict struct {
	decision string
	score    float64
	model    string
}

type send struct {
	orderID, eventType string
	v                  verdict
	body               []byte
}

type outcome struct {
	send
	status int
}

// TestConcurrentCallbacks drives 400 orders with 16 concurrent senders:
// callbacks in random order, about 30% sent twice byte for byte and 10% with
// a conflicting verdict under the same key. Every key must be accepted
// exactly once, every other send must be a duplicate or a conflict according
// to the accepted verdict, and each order must end where an oracle that knows
// the accepted verdicts says.
func TestConcurrentCallbacks(t *testing.T) {
	if testing.Short() {
		t.Skip("drives 400 orders through the real store")
	}
	const orders, senders = 400, 16
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x0dde))
	s := newServer(t, serverOpts{sweep: true})

	start := time.Now()
	ids := make([]string, orders)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < senders; w++ {
		wg.Go(func() {
			for i := range next {
				ids[i] = s.mustCreate(t, "u_conc")
			}
		})
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	t.Logf("created in %v", time.Since(start))
	if t.Failed() {
		t.FailNow()
	}

	decisions := []string{"approve", "reject", "review"}
	var sends []send
	add := func(id, et string, v verdict) {
		sends = append(sends, send{id, et, v, callbackBody(id, et, v.decision, v.score, v.model)})
		if rng.Float64() < 0.30 {
			sends = append(sends, sends[len(sends)-1]) // exact duplicate
		}
		if rng.Float64() < 0.10 {
			c := v
			for c.decision == v.decision {
				c.decision = decisions[rng.IntN(len(decisions))]
				if et == "risk.reviewed" && c.decision == "review" {
					c.decision = v.decision
				}
			}
			sends = append(sends, send{id, et, c, callbackBody(id, et, c.decision, c.score, c.model)})
		}
	}
	for _, id := range ids {
		d := verdict{decisions[rng.IntN(3)], float64(rng.IntN(1000)) / 1000, "v3"}
		add(id, "risk.decided", d)
		if d.decision == "review" || rng.Float64() < 0.2 {
			add(id, "risk.reviewed", verdict{decisions[rng.IntN(2)], 1, "human"})
		}
	}
	rng.Shuffle(len(sends), func(i, j int) { sends[i], sends[j] = sends[j], sends[i] })

	results := make([]outcome, len(sends))
	work := make(chan int)
	for w := 0; w < senders; w++ {
		wg.Go(func() {
			for i := range work {
				r := s.sendCallback(t, sends[i].body)
				results[i] = outcome{sends[i], r.status}
			}
		})
	}
	for i := range sends {
		work <- i
	}
	close(work)
	wg.Wait()
	t.Logf("sent in %v", time.Since(start))

	type key struct{ orderID, eventType string }
	accepted := map[key]verdict{}
	counts := map[key]int{}
	for _, r := range results {
		k := key{r.orderID, r.eventType}
		if r.status == http.StatusAccepted {
			counts[k]++
			accepted[k] = r.v
		}
	}
	for _, r := range results {
		k := key{r.orderID, r.eventType}
		if counts[k] != 1 {
			t.Fatalf("key %v accepted %d times", k, counts[k])
		}
		want := http.StatusConflict
		if r.v == accepted[k] {
			want = http.StatusOK // or the one 202, counted above
		}
		if r.status != want && r.status != http.StatusAccepted {
			t.Errorf("send %v %s %+v: %d, want %d", r.orderID, r.eventType, r.v, r.status, want)
		}
	}

	// The oracle: final status from the accepted verdicts.
	for _, id := range ids {
		d := accepted[key{id, "risk.decided"}]
		want := map[string]string{"approve": "approved", "reject": "rejected", "review": "in_review"}[d.decision]
		if rv, ok := accepted[key{id, "risk.reviewed"}]; ok && d.decision == "review" {
			want = map[string]string{"approve": "approved", "reject": "rejected"}[rv.decision]
		}
		s.waitStatus(t, id, want)
	}
	st := s.svc.Stats()
	t.Logf("%d orders, %d callbacks sent, service stats %+v", orders, len(sends), st)
}
