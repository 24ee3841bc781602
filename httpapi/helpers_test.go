package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/deadline"
	"github.com/orderflow/orderflow/httpapi"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/store/sqlite"
	"github.com/orderflow/orderflow/telemetry"
	"github.com/orderflow/orderflow/workerpool"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var secret = []byte("test-secret")

// server is the public handler over a real SQLite store, served by httptest.
type server struct {
	*httptest.Server
	svc     *order.Service
	store   *sqlite.Store
	pool    *workerpool.Pool
	metrics *telemetry.Metrics
	now     time.Time // the handler's clock for signatures
}

type serverOpts struct {
	pool    workerpool.Config
	tokens  []string
	secrets [][]byte
	ready   map[string]orderflow.Pinger
	sweep   bool // run the sweeper
	store   []sqlite.Option
	budgets deadline.Budgets
}

// newServer starts a server; cleanup stops it in dependency order: HTTP,
// sweeper, pool, store.
func newServer(tb testing.TB, o serverOpts) *server {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "orders.db"), o.store...)
	if err != nil {
		tb.Fatal(err)
	}
	// Warnings (failed applies, sweeps) go to the test log: they explain a
	// stuck order.
	log := slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pool := workerpool.New(o.pool)
	svc, err := order.New(order.Config{Store: st, Pool: pool, Logger: log, SweepInterval: 50 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	if o.secrets == nil {
		o.secrets = [][]byte{secret}
	}
	s := &server{svc: svc, store: st, pool: pool, metrics: telemetry.New(), now: time.Now()}
	if o.ready == nil {
		o.ready = map[string]orderflow.Pinger{"store": st}
	}
	h := httpapi.NewPublic(httpapi.PublicConfig{
		Service: svc, CallbackSecrets: o.secrets, APITokens: o.tokens, Ready: o.ready,
		Metrics: s.metrics, Logger: log, Now: func() time.Time { return s.now }, Budgets: o.budgets,
	})
	s.Server = httptest.NewServer(h)
	ctx, stop := context.WithCancel(context.Background())
	swept := make(chan struct{})
	if o.sweep {
		go func() { defer close(swept); _ = svc.Run(ctx) }()
	} else {
		close(swept)
	}
	tb.Cleanup(func() {
		s.Close()
		stop()
		<-swept
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := pool.Close(cctx); err != nil {
			tb.Error(err)
		}
		if err := st.Close(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		tb.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// errorOf returns code and field of an error body; field is "<absent>" when
// the member is missing.
func (r response) errorOf(tb testing.TB) (code, field string) {
	tb.Helper()
	var b struct {
		Error struct {
			Code    string  `json:"code"`
			Message string  `json:"message"`
			Field   *string `json:"field"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &b); err != nil || b.Error.Code == "" {
		tb.Fatalf("not an error body: %q (%v)", r.body, err)
	}
	if b.Error.Message == "" {
		tb.Errorf("error without a message: %q", r.body)
	}
	field = "<absent>"
	if b.Error.Field != nil {
		field = *b.Error.Field
	}
	return b.Error.Code, field
}

// do sends a request; header pairs are name, value, name, value…
func (s *server) do(tb testing.TB, method, path string, body []byte, header ...string) response {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	res, err := s.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

const ctJSON = "application/json"

func (s *server) createOrder(tb testing.TB, body string, header ...string) response {
	tb.Helper()
	return s.do(tb, http.MethodPost, "/v1/orders", []byte(body), append([]string{"Content-Type", ctJSON}, header...)...)
}

// mustCreate creates an order for user and returns its id.
func (s *server) mustCreate(tb testing.TB, user string) string {
	tb.Helper()
	r := s.createOrder(tb, orderBody(user))
	if r.status != http.StatusCreated {
		tb.Fatalf("create: %d %s", r.status, r.body)
	}
	return r.json(tb)["id"].(string)
}

func orderBody(user string) string {
	return `{"user_id": "` + user + `", "amount_minor": 129900, "currency": "CNY", "region": "east-china",
 "items": [{"sku": "sku-1", "qty": 2}], "internal": false, "ip": "203.0.113.7", "device_id": "d-9"}`
}

func callbackBody(orderID, eventType, decision string, score float64, model string) []byte {
	b, _ := json.Marshal(map[string]any{
		"event_id": "evt_" + strings.ReplaceAll(orderID, "ord_", ""), "order_id": orderID, "event_type": eventType,
		"decision": decision, "score": score, "model_version": model, "decided_at": "2026-11-26T08:00:00.123456789Z",
	})
	return b
}

// sendCallback signs body with secret at the server's clock.
func (s *server) sendCallback(tb testing.TB, body []byte) response {
	tb.Helper()
	return s.do(tb, http.MethodPost, "/v1/risk/callbacks", body,
		"Content-Type", ctJSON, "X-Orderflow-Signature", httpapi.Sign(secret, s.now, body))
}

// waitStatus polls GET until the order has status want. The deadline is
// generous: under -race on a loaded machine an apply backlog of hundreds of
// orders takes tens of seconds to drain, and that is not a failure.
func (s *server) waitStatus(tb testing.TB, id, want string) map[string]any {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := s.do(tb, http.MethodGet, "/v1/orders/"+id, nil)
		m := r.json(tb)
		if m["status"] == want {
			return m
		}
		if time.Now().After(deadline) {
			ev := s.do(tb, http.MethodGet, "/v1/orders/"+id+"/events", nil)
			tb.Fatalf("order %s: status %v, want %s; history %s", id, m["status"], want, ev.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var poolOfOne = workerpool.Config{Workers: 1, QueueSize: 1}

// blockPool occupies every worker and queue slot of p until unblock is
// called (idempotent).
func blockPool(tb testing.TB, p *workerpool.Pool) (unblock func()) {
	tb.Helper()
	gate := make(chan struct{})
	task := func(context.Context) { <-gate }
	deadline := time.Now().Add(5 * time.Second)
	for st := p.Stats(); st.Busy < st.Workers || st.QueueDepth < st.QueueCap; st = p.Stats() {
		_ = p.TrySubmit(task)
		if time.Now().After(deadline) {
			tb.Fatalf("pool never filled: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

// tbWriter sends log lines to the test's log.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
