package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/risk"
	"github.com/orderflow/orderflow/risk/callbackclient"
	"github.com/orderflow/orderflow/risk/engine"
	"github.com/orderflow/orderflow/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scriptSender answers attempts from a script (the last answer repeats) and
// records what it was asked to send.
type scriptSender struct {
	mu     sync.Mutex
	script []callbackclient.Result
	sent   []orderflow.Callback
	at     []time.Time
}

func (s *scriptSender) Send(_ context.Context, cb *orderflow.Callback) callbackclient.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, *cb)
	s.at = append(s.at, time.Now())
	r := s.script[min(len(s.sent), len(s.script))-1]
	if r.Class != callbackclient.Delivered && r.Err == nil {
		r.Err = errors.New("scripted failure")
	}
	return r
}

func (s *scriptSender) calls() []orderflow.Callback {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]orderflow.Callback(nil), s.sent...)
}

// blockConsumer delivers nothing: Run then only runs the review senders.
type blockConsumer struct{}

func (blockConsumer) Consume(ctx context.Context, _ string, _ orderflow.Handler) error {
	<-ctx.Done()
	return nil
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newAssessor(t *testing.T) *risk.Assessor {
	t.Helper()
	router, err := risk.NewRouter("test", 0)
	if err != nil {
		t.Fatal(err)
	}
	return &risk.Assessor{Counters: risk.NewMemoryCounters(risk.MemoryConfig{}), Router: router,
		Champion: risk.V21(), Challenger: risk.V3()}
}

func newEngine(t *testing.T, st orderflow.DecisionStore, a engine.Assessor, s engine.Sender, r engine.Retry) *engine.Engine {
	t.Helper()
	e, err := engine.New(engine.Config{Consumer: blockConsumer{}, Assessor: a, Decisions: st, Sender: s, Retry: r})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func delivery(t *testing.T, id string) orderflow.Delivery {
	t.Helper()
	o := orderflow.Order{
		ID: id, UserID: "u_1", AmountMinor: 1000, Currency: "CNY", Region: "east-china",
		Items: []orderflow.Item{{SKU: "s", Qty: 1}}, Status: orderflow.StatusPendingReview, Version: 1,
		CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(),
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return orderflow.Delivery{Event: orderflow.Event{ID: "evt_" + id, Type: orderflow.EventOrderCreated,
		OrderID: id, Payload: b, CreatedAt: o.CreatedAt}, Group: "risk", Attempt: 1}
}

func res(c callbackclient.Class, status int) callbackclient.Result {
	return callbackclient.Result{Class: c, Status: status}
}

func TestHandleOutcomes(t *testing.T) {
	fast := engine.Retry{Base: time.Millisecond, Max: 5 * time.Millisecond, Budget: time.Second}
	tests := []struct {
		name      string
		script    []callbackclient.Result
		retry     engine.Retry
		wantErr   bool
		permanent bool
		wantCalls int
	}{
		{"Accepted", []callbackclient.Result{res(callbackclient.Delivered, 202)}, fast, false, false, 1},
		{"Duplicate", []callbackclient.Result{{Class: callbackclient.Delivered, Status: 200, Duplicate: true}}, fast, false, false, 1},
		{"BadRequestDeadLetters", []callbackclient.Result{res(callbackclient.Permanent, 400)}, fast, true, true, 1},
		{"UnknownOrderDeadLetters", []callbackclient.Result{res(callbackclient.Permanent, 404)}, fast, true, true, 1},
		{"ConflictDeadLetters", []callbackclient.Result{res(callbackclient.Conflict, 409)}, fast, true, true, 1},
		{"UnavailableThenAccepted", []callbackclient.Result{res(callbackclient.Retry, 503), res(callbackclient.Retry, 0),
			res(callbackclient.Delivered, 202)}, fast, false, false, 3},
		{"BudgetExhaustedLeavesUnacked", []callbackclient.Result{res(callbackclient.Retry, 503)},
			engine.Retry{Base: 10 * time.Millisecond, Max: 20 * time.Millisecond, Budget: 100 * time.Millisecond}, true, false, 0},
		{"BreakerOpenLeavesUnacked", []callbackclient.Result{res(callbackclient.BreakerOpen, 0)}, fast, true, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			s := &scriptSender{script: tt.script}
			e := newEngine(t, st, newAssessor(t), s, tt.retry)
			err := e.Handle(context.Background(), delivery(t, "ord_1"))
			if (err != nil) != tt.wantErr || orderflow.IsPermanent(err) != tt.permanent {
				t.Fatalf("Handle: %v; want error %v, permanent %v", err, tt.wantErr, tt.permanent)
			}
			calls := s.calls()
			if tt.wantCalls > 0 && len(calls) != tt.wantCalls {
				t.Errorf("%d attempts, want %d", len(calls), tt.wantCalls)
			}
			if tt.wantCalls == 0 && len(calls) < 2 {
				t.Errorf("%d attempts: the budget should allow a few", len(calls))
			}
			for _, cb := range calls {
				if cb != calls[0] {
					t.Errorf("attempts sent different callbacks: %+v vs %+v", cb, calls[0])
				}
			}
		})
	}
}

// A redelivered event resends the verdict stored the first time, even when
// a fresh assessment would decide otherwise.
func TestHandleResendsStoredDecision(t *testing.T) {
	st := openStore(t)
	var n int
	var mu sync.Mutex
	flaky := assessFunc(func(_ context.Context, o orderflow.Order) (orderflow.RiskDecision, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		d := orderflow.DecisionApprove
		if n > 1 {
			d = orderflow.DecisionReject
		}
		return orderflow.RiskDecision{OrderID: o.ID, UserID: o.UserID, EventType: orderflow.EventRiskDecided,
			EventID: "evt_dec_" + o.ID, Decision: d, Score: float64(n) / 10, ModelVersion: "v2.1", DecidedAt: time.Now().UTC()}, nil
	})
	s := &scriptSender{script: []callbackclient.Result{res(callbackclient.Delivered, 202)}}
	e := newEngine(t, st, flaky, s, engine.Retry{})
	for range 3 {
		if err := e.Handle(context.Background(), delivery(t, "ord_2")); err != nil {
			t.Fatal(err)
		}
	}
	calls := s.calls()
	if len(calls) != 3 {
		t.Fatalf("%d sends, want 3", len(calls))
	}
	for _, cb := range calls {
		if cb.Decision != orderflow.DecisionApprove || cb.Score != 0.1 || !cb.DecidedAt.Equal(calls[0].DecidedAt) {
			t.Errorf("resent %+v, want the first verdict %+v", cb, calls[0])
		}
	}
	if got := e.DecisionCounts()["v2.1"]; got != 1 {
		t.Errorf("counted %d new decisions, want 1", got)
	}
}

type assessFunc func(context.Context, orderflow.Order) (orderflow.RiskDecision, error)

func (f assessFunc) Assess(ctx context.Context, o orderflow.Order) (orderflow.RiskDecision, error) {
	return f(ctx, o)
}

func TestHandleRetryAfterIsHonoured(t *testing.T) {
	st := openStore(t)
	s := &scriptSender{script: []callbackclient.Result{
		{Class: callbackclient.Retry, Status: 429, RetryAfter: 150 * time.Millisecond},
		res(callbackclient.Delivered, 202),
	}}
	e := newEngine(t, st, newAssessor(t), s, engine.Retry{Base: time.Millisecond, Max: 5 * time.Millisecond, Budget: 5 * time.Second})
	if err := e.Handle(context.Background(), delivery(t, "ord_3")); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if gap := s.at[1].Sub(s.at[0]); gap < 150*time.Millisecond {
		t.Errorf("retried after %v, before the server's Retry-After of 150ms", gap)
	}
}

func TestHandleIgnoresAndRejects(t *testing.T) {
	st := openStore(t)
	s := &scriptSender{script: []callbackclient.Result{res(callbackclient.Delivered, 202)}}
	e := newEngine(t, st, newAssessor(t), s, engine.Retry{})
	other := delivery(t, "ord_4")
	other.Type = "order.cancelled"
	if err := e.Handle(context.Background(), other); err != nil {
		t.Errorf("another event type: %v, want ack", err)
	}
	bad := delivery(t, "ord_5")
	bad.Payload = []byte("{not json")
	if err := e.Handle(context.Background(), bad); !orderflow.IsPermanent(err) {
		t.Errorf("undecodable payload: %v, want permanent", err)
	}
	if n := len(s.calls()); n != 0 {
		t.Errorf("%d callbacks sent, want 0", n)
	}
}

func TestReview(t *testing.T) {
	st := openStore(t)
	s := &scriptSender{script: []callbackclient.Result{res(callbackclient.Delivered, 202)}}
	e := newEngine(t, st, newAssessor(t), s, engine.Retry{})
	ctx := context.Background()
	if err := e.Review(ctx, "ord_6", orderflow.DecisionApprove, "alice"); orderflow.ErrorCode(err) != orderflow.EUnavailable {
		t.Errorf("review before Run: %v, want unavailable", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// Run starts the senders before it consumes; wait until it accepts.
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for err = e.Review(ctx, "ord_6", orderflow.DecisionReject, "alice"); orderflow.ErrorCode(err) == orderflow.EUnavailable && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		err = e.Review(ctx, "ord_6", orderflow.DecisionReject, "alice")
	}
	if err != nil {
		t.Fatalf("review: %v", err)
	}
	if err := e.Review(ctx, "ord_6", orderflow.DecisionReject, "bob"); err != nil {
		t.Errorf("same verdict again: %v, want accepted", err)
	}
	if err := e.Review(ctx, "ord_6", orderflow.DecisionApprove, "bob"); orderflow.ErrorCode(err) != orderflow.EConflict {
		t.Errorf("different verdict: %v, want conflict", err)
	}
	if err := e.Review(ctx, "ord_7", orderflow.DecisionReview, "bob"); orderflow.ErrorCode(err) != orderflow.EInvalid {
		t.Errorf("decision review: %v, want invalid_argument", err)
	}
	for time.Now().Before(deadline) && len(s.calls()) < 2 {
		time.Sleep(time.Millisecond)
	}
	for _, cb := range s.calls() {
		if cb.EventType != orderflow.EventRiskReviewed || cb.Decision != orderflow.DecisionReject || cb.ModelVersion != engine.ReviewModelVersion {
			t.Errorf("sent %+v", cb)
		}
	}
	if n := len(s.calls()); n != 2 {
		t.Errorf("%d reviews sent, want 2", n)
	}
}
