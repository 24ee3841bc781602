package order_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/store/sqlite"
	"github.com/orderflow/orderflow/workerpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a Service over a real SQLite store in a temporary directory.
type env struct {
	svc   *order.Service
	store *sqlite.Store
	pool  *workerpool.Pool
}

// mustOpen builds an env; cleanup closes pool then store, in that order.
func mustOpen(tb testing.TB, poolCfg workerpool.Config, mod func(*order.Config), opts ...sqlite.Option) *env {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "orders.db"), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	pool := workerpool.New(poolCfg)
	cfg := order.Config{Store: st, Pool: pool, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := order.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := pool.Close(ctx); err != nil {
			tb.Error(err)
		}
		if err := st.Close(); err != nil {
			tb.Error(err)
		}
	})
	return &env{svc: svc, store: st, pool: pool}
}

func newOrder(user string) orderflow.NewOrder {
	return orderflow.NewOrder{UserID: user, AmountMinor: 129900, Currency: "CNY", Region: "east-china",
		Items: []orderflow.Item{{SKU: "sku-1", Qty: 2}}, IP: "203.0.113.7", DeviceID: "d-9"}
}

func callback(orderID string, et orderflow.EventType, d orderflow.Decision) *orderflow.Callback {
	return &orderflow.Callback{EventID: "evt_test", OrderID: orderID, EventType: et, Decision: d,
		Score: 0.25, ModelVersion: "v3", DecidedAt: time.Now().UTC()}
}

func code(err error) string { return orderflow.ErrorCode(err) }

// waitStatus polls until the order reaches want: applying is asynchronous.
func waitStatus(t *testing.T, svc *order.Service, id string, want orderflow.Status) *orderflow.Order {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		o, err := svc.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if o.Status == want {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s: status %s, want %s", id, o.Status, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCreate(t *testing.T) {
	e := mustOpen(t, workerpool.Config{}, nil)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	defer otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))

	o, replay, err := e.svc.Create(ctx, newOrder("u_1"), "")
	if err != nil || replay {
		t.Fatalf("Create: %v replay=%v", err, replay)
	}
	if len(o.ID) != 30 || o.ID[:4] != "ord_" {
		t.Errorf("id = %q, want ord_ + 26 chars", o.ID)
	}
	if o.Status != orderflow.StatusPendingReview || o.Version != 1 || o.Risk != nil {
		t.Errorf("new order = %+v", o)
	}
	got, err := e.svc.Get(ctx, o.ID)
	if err != nil || got.ID != o.ID || !got.CreatedAt.Equal(o.CreatedAt) {
		t.Fatalf("Get = %+v, %v", got, err)
	}

	// The outbox event carries the order and the caller's trace context.
	var typ, headers string
	var payload []byte
	err = e.store.ReadDB().QueryRow(`SELECT type, payload, headers FROM outbox WHERE order_id = ?`, o.ID).Scan(&typ, &payload, &headers)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]string
	var p orderflow.Order
	if err := json.Unmarshal([]byte(headers), &h); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatal(err)
	}
	if typ != orderflow.EventOrderCreated || p.ID != o.ID || p.AmountMinor != 129900 {
		t.Errorf("event %s payload %+v", typ, p)
	}
	if want := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; h["traceparent"] != want {
		t.Errorf("traceparent = %q, want %q", h["traceparent"], want)
	}
}

func TestCreateErrors(t *testing.T) {
	e := mustOpen(t, workerpool.Config{}, nil)
	bad := newOrder("u_1")
	bad.Items[0].Qty = 0
	tests := []struct {
		name      string
		req       orderflow.NewOrder
		key       string
		wantField string
	}{
		{"ErrQty", bad, "", "items[0].qty"},
		{"ErrKeyTooLong", newOrder("u_1"), string(make([]byte, 129)), "Idempotency-Key"},
		{"ErrKeyControlChar", newOrder("u_1"), "a\nb", "Idempotency-Key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := e.svc.Create(context.Background(), tt.req, tt.key)
			if code(err) != orderflow.EInvalid || orderflow.ErrorField(err) != tt.wantField {
				t.Errorf("err = %v, want invalid_argument on %s", err, tt.wantField)
			}
		})
	}
}

func TestCreateIdempotent(t *testing.T) {
	e := mustOpen(t, workerpool.Config{}, nil)
	ctx := context.Background()
	first, replay, err := e.svc.Create(ctx, newOrder("u_1"), "key-1")
	if err != nil || replay {
		t.Fatalf("first: %v %v", err, replay)
	}
	again, replay, err := e.svc.Create(ctx, newOrder("u_1"), "key-1")
	if err != nil || !replay || again.ID != first.ID {
		t.Fatalf("repeat: %+v replay=%v err=%v", again, replay, err)
	}
	if _, _, err := e.svc.Create(ctx, newOrder("u_2"), "key-1"); code(err) != orderflow.EConflict {
		t.Errorf("other request under the same key: %v, want conflict", err)
	}
	other, replay, err := e.svc.Create(ctx, newOrder("u_1"), "key-2")
	if err != nil || replay || other.ID == first.ID {
		t.Errorf("new key: %+v %v %v", other, replay, err)
	}
}

func TestCreateSameKeyInFlightConflicts(t *testing.T) {
	entered := make(chan struct{})
	unblock := make(chan struct{})
	var once sync.Once
	e := mustOpen(t, workerpool.Config{}, nil, sqlite.WithBeforeCommit(func() {
		once.Do(func() { close(entered); <-unblock })
	}))
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		_, _, err := e.svc.Create(ctx, newOrder("u_1"), "slow-key")
		done <- err
	}()
	<-entered
	_, _, err := e.svc.Create(ctx, newOrder("u_1"), "slow-key")
	close(unblock)
	if code(err) != orderflow.EConflict {
		t.Errorf("second request while the first is in flight: %v, want conflict", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("first request: %v", err)
	}
	if _, replay, err := e.svc.Create(ctx, newOrder("u_1"), "slow-key"); err != nil || !replay {
		t.Errorf("after the first finished: replay=%v err=%v, want a replay", replay, err)
	}
}

func TestList(t *testing.T) {
	e := mustOpen(t, workerpool.Config{}, nil)
	ctx := context.Background()
	var mine []string
	for i := 0; i < 7; i++ {
		o, _, err := e.svc.Create(ctx, newOrder("u_1"), "")
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, o.ID)
		if _, _, err := e.svc.Create(ctx, newOrder("u_2"), ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.Cancel(ctx, mine[0]); err != nil {
		t.Fatal(err)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mine))) // ids are time-ordered: newest first

	var got []string
	p := order.ListParams{UserID: "u_1", Limit: 3}
	pages := 0
	for {
		page, err := e.svc.List(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, o := range page.Orders {
			got = append(got, o.ID)
		}
		if page.NextCursor == "" {
			break
		}
		p.Cursor = page.NextCursor
	}
	if pages != 3 || len(got) != 7 {
		t.Fatalf("pages=%d orders=%d, want 3 and 7", pages, len(got))
	}
	for i := range got {
		if got[i] != mine[i] {
			t.Fatalf("order %d = %s, want %s (newest first)", i, got[i], mine[i])
		}
	}

	page, err := e.svc.List(ctx, order.ListParams{UserID: "u_1", Status: orderflow.StatusCancelled})
	if err != nil || len(page.Orders) != 1 || page.NextCursor != "" {
		t.Errorf("status filter: %d orders, cursor %q, err %v", len(page.Orders), page.NextCursor, err)
	}
	page, err = e.svc.List(ctx, order.ListParams{})
	if err != nil || len(page.Orders) != 14 {
		t.Errorf("no filter: %d orders, err %v", len(page.Orders), err)
	}

	first, _ := e.svc.List(ctx, order.ListParams{UserID: "u_1", Limit: 2})
	errs := []struct {
		name  string
		p     order.ListParams
		field string
	}{
		{"ErrLimitTooBig", order.ListParams{Limit: 201}, "limit"},
		{"ErrLimitNegative", order.ListParams{Limit: -1}, "limit"},
		{"ErrStatus", order.ListParams{Status: "shipped"}, "status"},
		{"ErrCursorGarbage", order.ListParams{Cursor: "!!!"}, "cursor"},
		{"ErrCursorNotJSON", order.ListParams{Cursor: "aGVsbG8"}, "cursor"},
		{"ErrCursorOtherUser", order.ListParams{UserID: "u_2", Cursor: first.NextCursor}, "cursor"},
		{"ErrCursorOtherStatus", order.ListParams{UserID: "u_1", Status: orderflow.StatusApproved, Cursor: first.NextCursor}, "cursor"},
		{"ErrCursorDroppedFilter", order.ListParams{Cursor: first.NextCursor}, "cursor"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.List(ctx, tt.p)
			if code(err) != orderflow.EInvalid || orderflow.ErrorField(err) != tt.field {
				t.Errorf("err = %v, want invalid_argument on %s", err, tt.field)
			}
		})
	}
}

func TestTransitions(t *testing.T) {
	e := mustOpen(t, workerpool.Config{}, nil)
	ctx := context.Background()
	o, _, _ := e.svc.Create(ctx, newOrder("u_1"), "")
	if _, err := e.svc.Fulfill(ctx, o.ID); code(err) != orderflow.EConflict {
		t.Errorf("fulfill pending order: %v, want conflict", err)
	}
	c, err := e.svc.Cancel(ctx, o.ID)
	if err != nil || c.Status != orderflow.StatusCancelled || c.Version != 2 {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	c, err = e.svc.Cancel(ctx, o.ID)
	if err != nil || c.Version != 2 {
		t.Errorf("repeated cancel: %+v %v, want unchanged", c, err)
	}
	if _, err := e.svc.Cancel(ctx, "ord_nope"); code(err) != orderflow.ENotFound {
		t.Errorf("cancel unknown: %v", err)
	}
	if _, err := e.svc.Get(ctx, "not even an id"); code(err) != orderflow.ENotFound {
		t.Errorf("get malformed id: %v", err)
	}
}

func TestRecordAndApply(t *testing.T) {
	e := mustOpen(t, workerpool.Config{Workers: 2}, nil)
	ctx := context.Background()
	o, _, _ := e.svc.Create(ctx, newOrder("u_1"), "")

	// risk.reviewed before risk.decided waits for it.
	res, err := e.svc.RecordCallback(ctx, callback(o.ID, orderflow.EventRiskReviewed, orderflow.DecisionApprove))
	if err != nil || res != orderflow.Accepted {
		t.Fatalf("reviewed: %v %v", res, err)
	}
	res, err = e.svc.RecordCallback(ctx, callback(o.ID, orderflow.EventRiskDecided, orderflow.DecisionReview))
	if err != nil || res != orderflow.Accepted {
		t.Fatalf("decided: %v %v", res, err)
	}
	got := waitStatus(t, e.svc, o.ID, orderflow.StatusApproved)
	if got.Version != 3 || got.Risk == nil || got.Risk.Decision != orderflow.DecisionApprove {
		t.Errorf("after apply: %+v", got)
	}

	dup := callback(o.ID, orderflow.EventRiskDecided, orderflow.DecisionReview)
	dup.EventID = "evt_other"
	if res, err := e.svc.RecordCallback(ctx, dup); err != nil || res != orderflow.Duplicate {
		t.Errorf("duplicate: %v %v", res, err)
	}
	if _, err := e.svc.RecordCallback(ctx, callback(o.ID, orderflow.EventRiskDecided, orderflow.DecisionReject)); code(err) != orderflow.EConflict {
		t.Errorf("conflicting verdict: %v", err)
	}
	if _, err := e.svc.RecordCallback(ctx, callback("ord_missing", orderflow.EventRiskDecided, orderflow.DecisionReject)); code(err) != orderflow.ENotFound {
		t.Errorf("unknown order: %v", err)
	}
	bad := callback(o.ID, orderflow.EventRiskDecided, orderflow.DecisionReject)
	bad.Score = 2
	if _, err := e.svc.RecordCallback(ctx, bad); orderflow.ErrorField(err) != "score" {
		t.Errorf("invalid score: %v", err)
	}

	h, err := e.svc.History(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[orderflow.HistoryKind]int{}
	for _, x := range h {
		kinds[x.Kind]++
	}
	if kinds[orderflow.HistoryCreated] != 1 || kinds[orderflow.HistoryCallback] != 2 || kinds[orderflow.HistoryTransition] != 2 {
		t.Errorf("history kinds = %v", kinds)
	}
}

// blockPool occupies every worker and queue slot of p until the returned
// function is called.
func blockPool(t *testing.T, p *workerpool.Pool) (unblock func()) {
	t.Helper()
	gate := make(chan struct{})
	for {
		if err := p.TrySubmit(func(context.Context) { <-gate }); errors.Is(err, workerpool.ErrFull) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	// Workers pick tasks up asynchronously: refill until full and stable.
	deadline := time.Now().Add(5 * time.Second)
	for st := p.Stats(); st.Busy < st.Workers || st.QueueDepth < st.QueueCap; st = p.Stats() {
		_ = p.TrySubmit(func(context.Context) { <-gate })
		if time.Now().After(deadline) {
			t.Fatalf("pool never filled: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
	return func() { close(gate) }
}

// recordOnly hides the store's inline apply (order.InlineApplier), so a
// recorded callback takes the pool and the sweeper, as with a store that has
// none.
type recordOnly struct{ orderflow.OrderStore }

func TestAdmitAndSweeper(t *testing.T) {
	e := mustOpen(t, workerpool.Config{Workers: 1, QueueSize: 1}, func(c *order.Config) {
		c.SweepInterval = 20 * time.Millisecond
		c.Store = recordOnly{c.Store}
	})
	ctx := context.Background()
	o, _, _ := e.svc.Create(ctx, newOrder("u_1"), "")
	unblock := blockPool(t, e.pool)

	if err := e.svc.Admit(); code(err) != orderflow.EResourceExhausted {
		t.Errorf("Admit with a full pool: %v, want resource_exhausted", err)
	}
	// Recorded anyway (a caller that skipped Admit): durable, applied later.
	res, err := e.svc.RecordCallback(ctx, callback(o.ID, orderflow.EventRiskDecided, orderflow.DecisionReject))
	if err != nil || res != orderflow.Accepted {
		t.Fatalf("record: %v %v", res, err)
	}
	if st := e.svc.Stats(); st.Deferred != 1 {
		t.Errorf("stats = %+v, want one deferred apply", st)
	}
	if got, _ := e.svc.Get(ctx, o.ID); got.Status != orderflow.StatusPendingReview {
		t.Fatalf("applied while the pool was full: %s", got.Status)
	}

	// The sweeper applies it on its own goroutine while the pool stays full.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(runCtx) }()
	waitStatus(t, e.svc, o.ID, orderflow.StatusRejected)
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v", err)
	}
	unblock()
	deadline := time.Now().Add(5 * time.Second)
	for e.svc.Admit() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Admit still refuses after the pool drained: %v", e.svc.Admit())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRecordAppliesInline: with a store that applies in the write that
// records (store/sqlite), an accepted callback is applied when
// RecordCallback returns, with the pool full and without the sweeper; a
// store without it leaves the apply to the pool.
func TestRecordAppliesInline(t *testing.T) {
	for _, tc := range []struct {
		name       string
		wrap       func(orderflow.OrderStore) orderflow.OrderStore
		wantStatus orderflow.Status
		deferred   int64
	}{
		{"Inline", func(s orderflow.OrderStore) orderflow.OrderStore { return s }, orderflow.StatusRejected, 0},
		{"RecordOnly", func(s orderflow.OrderStore) orderflow.OrderStore { return recordOnly{s} }, orderflow.StatusPendingReview, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustOpen(t, workerpool.Config{Workers: 1, QueueSize: 1}, func(c *order.Config) { c.Store = tc.wrap(c.Store) })
			ctx := context.Background()
			o, _, err := e.svc.Create(ctx, newOrder("u_1"), "")
			if err != nil {
				t.Fatal(err)
			}
			unblock := blockPool(t, e.pool)
			defer unblock()
			res, err := e.svc.RecordCallback(ctx, callback(o.ID, orderflow.EventRiskDecided, orderflow.DecisionReject))
			if err != nil || res != orderflow.Accepted {
				t.Fatalf("record: %v %v", res, err)
			}
			if got, _ := e.svc.Get(ctx, o.ID); got.Status != tc.wantStatus {
				t.Errorf("status after RecordCallback = %s, want %s", got.Status, tc.wantStatus)
			}
			if st := e.svc.Stats(); st.Deferred != tc.deferred {
				t.Errorf("stats = %+v, want %d deferred", st, tc.deferred)
			}
		})
	}
}

func TestMaxInFlight(t *testing.T) {
	entered := make(chan struct{})
	unblock := make(chan struct{})
	var once sync.Once
	e := mustOpen(t, workerpool.Config{}, func(c *order.Config) { c.MaxInFlight = 1 },
		sqlite.WithBeforeCommit(func() { once.Do(func() { close(entered); <-unblock }) }))
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		_, _, err := e.svc.Create(ctx, newOrder("u_1"), "")
		done <- err
	}()
	<-entered
	if err := e.svc.Admit(); code(err) != orderflow.EResourceExhausted {
		t.Errorf("Admit at the cap: %v", err)
	}
	_, _, err := e.svc.Create(ctx, newOrder("u_1"), "")
	close(unblock)
	if code(err) != orderflow.EResourceExhausted {
		t.Errorf("Create at the cap: %v, want resource_exhausted", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRunAppliesWhatACrashLeft(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "orders.db")
	ctx := context.Background()

	// First life: record with a pool that never runs the apply.
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	pool := workerpool.New(workerpool.Config{Workers: 1, QueueSize: 1})
	svc, _ := order.New(order.Config{Store: recordOnly{st}, Pool: pool, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	unblock := blockPool(t, pool)
	o, _, err := svc.Create(ctx, newOrder("u_1"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RecordCallback(ctx, callback(o.ID, orderflow.EventRiskDecided, orderflow.DecisionApprove)); err != nil {
		t.Fatal(err)
	}
	unblock()
	_ = pool.Close(ctx)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Second life: Run applies it right away, not after a full interval.
	st2, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	pool2 := workerpool.New(workerpool.Config{})
	defer pool2.Close(ctx)
	svc2, _ := order.New(order.Config{Store: st2, Pool: pool2, SweepInterval: time.Hour})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc2.Run(runCtx) }()
	waitStatus(t, svc2, o.ID, orderflow.StatusApproved)
	stop()
	<-done
}
