package loadgen_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi"
	"github.com/orderflow/orderflow/loadgen"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/store/sqlite"
	"github.com/orderflow/orderflow/workerpool"
)

// realService is the order service over SQLite, served by httptest, with a
// stand-in risk engine: a goroutine that lists pending orders and posts a
// signed risk.decided callback for each, and a labels route that records
// what loadgen posts. The order side is the real thing: creates, the
// idempotency keys, the inbox, the apply pool and the state machine.
type realService struct {
	*httptest.Server
	mu        sync.Mutex
	labels    map[string]bool
	callbacks map[string]orderflow.Decision
}

var realSecret = []byte("loadgen-test-secret")

// realScore is the stand-in engine's model.
func realScore(amountMinor int64) float64 {
	return float64(amountMinor) / float64(amountMinor+300_000)
}

func newRealService(t *testing.T) *realService {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "orders.db"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pool := workerpool.New(workerpool.Config{})
	svc, err := order.New(order.Config{Store: st, Pool: pool, Logger: log, SweepInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rs := &realService{labels: map[string]bool{}, callbacks: map[string]orderflow.Decision{}}
	labels := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var l struct {
			OrderID string `json:"order_id"`
			Fraud   bool   `json:"fraud"`
		}
		if err := json.NewDecoder(r.Body).Decode(&l); err != nil {
			httpapi.WriteError(w, orderflow.Invalid("", "bad label"))
			return
		}
		rs.mu.Lock()
		rs.labels[l.OrderID] = l.Fraud
		rs.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	rs.Server = httptest.NewServer(httpapi.NewPublic(httpapi.PublicConfig{
		Service: svc, CallbackSecrets: [][]byte{realSecret}, Logger: log,
		Extra: map[string]http.Handler{"POST /v1/risk/labels": labels},
	}))
	var owned sync.WaitGroup
	owned.Go(func() { _ = svc.Run(ctx) })
	owned.Go(func() { rs.decide(ctx, t) })
	t.Cleanup(func() {
		stop()
		owned.Wait()
		rs.Close()
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := pool.Close(cctx); err != nil {
			t.Error(err)
		}
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return rs
}

// decide is the stand-in risk engine: every few milliseconds it lists the
// pending orders and sends each one's verdict, once.
func (rs *realService) decide(ctx context.Context, t *testing.T) {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
		resp, err := hc.Get(rs.URL + "/v1/orders?status=pending_review&limit=200")
		if err != nil {
			continue
		}
		var page struct{ Orders []orderflow.Order }
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			continue
		}
		for _, o := range page.Orders {
			rs.mu.Lock()
			_, done := rs.callbacks[o.ID]
			rs.mu.Unlock()
			if done {
				continue
			}
			score := realScore(o.AmountMinor)
			d := orderflow.DecisionApprove
			switch {
			case score >= 0.8:
				d = orderflow.DecisionReject
			case score >= 0.5:
				d = orderflow.DecisionReview
			}
			body, _ := json.Marshal(orderflow.Callback{
				EventID: "evt_" + o.ID, OrderID: o.ID, EventType: orderflow.EventRiskDecided,
				Decision: d, Score: score, ModelVersion: "test-v1", DecidedAt: time.Now().UTC(),
			})
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, rs.URL+"/v1/risk/callbacks", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Orderflow-Signature", httpapi.Sign(realSecret, time.Now(), body))
			resp, err := hc.Do(req)
			if err != nil {
				continue
			}
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				rs.mu.Lock()
				rs.callbacks[o.ID] = d
				rs.mu.Unlock()
			} else {
				t.Logf("callback for %s: %s", o.ID, resp.Status)
			}
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// TestRunAgainstRealService drives the real order service in process and
// checks that the summary counts match what the service and the stand-in
// engine saw.
func TestRunAgainstRealService(t *testing.T) {
	rs := newRealService(t)
	cfg := quick(rs.URL, 60)
	cfg.Rate = 300
	cfg.Drain = 30 * time.Second
	s, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	a := s.Adversaries
	if s.Offered != 60 || s.Sent+s.Dropped != 60 {
		t.Errorf("offered %d, sent %d, dropped %d", s.Offered, s.Sent, s.Dropped)
	}
	if want := s.Sent + a.Attempts - a.Users; s.Created != want || s.Failed != 0 {
		t.Errorf("created %d, failed %d, want %d created (errors %v)", s.Created, s.Failed, want, s.Errors)
	}
	if s.Decided != s.Created || int64(len(rs.callbacks)) != s.Decided {
		t.Errorf("decided %d of %d created; the engine sent %d verdicts", s.Decided, s.Created, len(rs.callbacks))
	}
	if int64(len(rs.labels)) != s.Decided || s.Labels.Sent != s.Decided {
		t.Errorf("labels: server got %d, summary %+v, want %d", len(rs.labels), s.Labels, s.Decided)
	}
	// The outcomes are the engine's verdicts, mapped to statuses.
	want := map[string]int64{}
	for _, d := range rs.callbacks {
		st, _, _ := orderflow.Transition(orderflow.StatusPendingReview, d.Action())
		want[string(st)]++
	}
	if fmt.Sprint(s.Outcomes) != fmt.Sprint(want) {
		t.Errorf("outcomes %v, the engine decided %v", s.Outcomes, want)
	}
	if m := s.Models["test-v1"]; m.Decided != s.Decided {
		t.Errorf("model test-v1 measured on %d orders, want %d", m.Decided, s.Decided)
	}
	if s.DecideLatency.Count != s.Decided {
		t.Errorf("server-side latency for %d orders, want all %d (each changed once)", s.DecideLatency.Count, s.Decided)
	}
	if a.Users == 0 || a.Unfinished != 0 {
		t.Errorf("adversaries %+v: want one or more, all finished", a)
	}
	t.Logf("summary: sent %d dropped %d created %d (p50 %.1fms) decided %d outcomes %v adversaries %+v decide p50 %.1fms",
		s.Sent, s.Dropped, s.Created, s.CreateLatency.P50, s.Decided, s.Outcomes, a, s.DecideLatency.P50)
}
