package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orderflow/orderflow"
)

// reconcile checks the books of a finished run: every order created has
// exactly one order.created event, one stored risk.decided decision, one
// risk.decided inbox row, applied, and no dead letter; no order still waits
// for its verdict and no decision was applied twice.
func reconcile(t *testing.T, a *app, orders int) {
	t.Helper()
	checks := []struct {
		name  string
		query string
		want  int
	}{
		{"orders", `SELECT count(*) FROM orders`, orders},
		{"outbox order.created", `SELECT count(*) FROM outbox WHERE type = 'order.created'`, orders},
		{"decisions stored", `SELECT count(*) FROM risk_decisions WHERE event_type = 'risk.decided'`, orders},
		{"inbox risk.decided", `SELECT count(*) FROM inbox WHERE event_type = 'risk.decided'`, orders},
		{"inbox applied", `SELECT count(*) FROM inbox WHERE event_type = 'risk.decided' AND outcome IS NOT NULL`, orders},
		{"inbox verdict = stored decision", `SELECT count(*) FROM inbox i JOIN risk_decisions d
			ON d.order_id = i.order_id AND d.event_type = i.event_type
			WHERE i.decision = d.decision AND i.score = d.score AND i.model_version = d.model_version`, orders},
		{"dead letters", `SELECT count(*) FROM bus_dead_letters`, 0},
		{"orders still pending_review", `SELECT count(*) FROM orders WHERE status = 'pending_review'`, 0},
		{"orders with two risk.decided transitions", `SELECT count(*) FROM (SELECT order_id FROM transitions
			WHERE cause = 'risk.decided' GROUP BY order_id HAVING count(*) > 1)`, 0},
		{"orders whose version is not 1 + transitions", `SELECT count(*) FROM orders o WHERE o.version !=
			1 + (SELECT count(*) FROM transitions t WHERE t.order_id = o.id)`, 0},
	}
	for _, c := range checks {
		if got := count(t, a, c.query); got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
		}
	}
}

func waitDecided(t *testing.T, a *app, orders int) {
	t.Helper()
	waitFor(t, 30*time.Second, "every order decided and applied", func() (bool, int, string) {
		n := count(t, a, `SELECT count(*) FROM inbox WHERE event_type = 'risk.decided' AND outcome IS NOT NULL`)
		return n >= orders, n, fmt.Sprintf("%d of %d applied", n, orders)
	})
}

// TestServeDecidesEveryOrderOnce is Must-show 1: 2,000 orders into serve over
// real HTTP; the engine decides each through real loopback callbacks, and the
// outbox, the decision store and the inbox reconcile one to one.
func TestServeDecidesEveryOrderOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 orders end to end")
	}
	s := startServe(t, nil)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	const orders = 2000
	createOrders(t, client, s.public, orders, 16)
	waitDecided(t, s.app, orders)
	reconcile(t, s.app, orders)
	if n := testutil.ToFloat64(s.app.metrics.Errors.WithLabelValues(orderflow.EConflict)); n != 0 {
		t.Errorf("%v conflict answers", n)
	}
	if n := s.app.engineMetrics.CallbackCount("delivered"); n < orders {
		t.Errorf("%v callbacks delivered, want >= %d", n, orders)
	}
}

// twiceConsumer delivers every event twice: the second delivery of an
// acknowledged event is what at-least-once allows after a crash between
// handling and acking.
type twiceConsumer struct{ orderflow.Consumer }

func (c twiceConsumer) Consume(ctx context.Context, group string, h orderflow.Handler) error {
	return c.Consumer.Consume(ctx, group, func(ctx context.Context, d orderflow.Delivery) error {
		if err := h(ctx, d); err != nil {
			return err
		}
		return h(ctx, d)
	})
}

// loseFirstResponse lets the first request for each order reach the server
// and be handled, then throws the response away and reports a connection
// failure: the sender cannot know its callback was recorded.
type loseFirstResponse struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen map[string]bool
	lost int
}

var errLostResponse = errors.New("test: response lost after the server handled the request")

func (l *loseFirstResponse) RoundTrip(r *http.Request) (*http.Response, error) {
	// A resend of a stored verdict has the same body byte for byte (only
	// the signature header changes), so the body is the key. GetBody, set
	// by http.NewRequest for a bytes.Reader, leaves the body sent intact.
	key := r.URL.Path
	if r.GetBody != nil {
		if b, err := r.GetBody(); err == nil {
			raw, _ := io.ReadAll(b)
			key = string(raw)
		}
	}
	resp, err := l.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	first := !l.seen[key]
	l.seen[key] = true
	if first {
		l.lost++
	}
	l.mu.Unlock()
	if first {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errLostResponse
	}
	return resp, nil
}

// TestServeDuplicatesAreHarmless is Must-show 3: every event is delivered
// twice and the first response to every callback is lost after the order
// service recorded it. Still one decision per order and not a single 409:
// the engine resends the STORED verdict, which the order service answers as
// a duplicate.
func TestServeDuplicatesAreHarmless(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	lose := &loseFirstResponse{seen: map[string]bool{}}
	s := startServe(t, func(a *app) {
		// Half of all callbacks "fail" here by design; the breaker would
		// rightly open, which is not what this test is about.
		a.breakerDryRun = true
		a.wrapConsumer = func(c orderflow.Consumer) orderflow.Consumer { return twiceConsumer{c} }
		a.wrapCallbackTransport = func(rt http.RoundTripper) http.RoundTripper { lose.next = rt; return lose }
	})
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	const orders = 300
	createOrders(t, client, s.public, orders, 8)
	waitDecided(t, s.app, orders)
	// Let the second deliveries finish before counting.
	waitFor(t, 30*time.Second, "every second delivery answered", func() (bool, int, string) {
		d := s.app.engineMetrics.CallbackCount("duplicate")
		return d >= 2*orders, int(d), fmt.Sprintf("%v duplicates", d)
	})
	reconcile(t, s.app, orders)
	if n := testutil.ToFloat64(s.app.metrics.Errors.WithLabelValues(orderflow.EConflict)); n != 0 {
		t.Errorf("%v 409 answers, want 0", n)
	}
	if n := s.app.engineMetrics.CallbackCount("conflict"); n != 0 {
		t.Errorf("engine saw %v conflicts, want 0", n)
	}
	lose.mu.Lock()
	lost := lose.lost
	lose.mu.Unlock()
	if lost < orders {
		t.Errorf("only %d responses lost: the test did not exercise the retry", lost)
	}
	t.Logf("lost %d responses; callbacks: delivered %v, duplicate %v, retry %v", lost,
		s.app.engineMetrics.CallbackCount("delivered"), s.app.engineMetrics.CallbackCount("duplicate"),
		s.app.engineMetrics.CallbackCount("retry"))
}
