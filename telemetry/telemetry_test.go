package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/telemetry"
	"github.com/orderflow/orderflow/workerpool"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRegistryLintsClean(t *testing.T) {
	m := telemetry.New()
	m.HTTPRequestDuration.WithLabelValues("GET /v1/orders/{id}", "2xx").Observe(0.003)
	m.Errors.WithLabelValues("not_found").Inc()
	m.PoolWaitObserver("apply")(3 * time.Millisecond)
	pool := workerpool.New(workerpool.Config{Workers: 2, QueueSize: 8, OnWait: m.PoolWaitObserver("apply")})
	defer pool.Close(context.Background())
	if err := m.RegisterPool("apply", pool); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	if err := pool.Submit(context.Background(), func(context.Context) { close(done) }); err != nil {
		t.Fatal(err)
	}
	<-done
	if err := m.RegisterOrderService(fakeOrder{}); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// CollectAndLint on each of our own collectors too: the registry-wide
	// gather above also covers the Go and process collectors.
	if problems, err := testutil.CollectAndLint(m.Errors); err != nil || len(problems) > 0 {
		t.Errorf("errors vector: %v %v", problems, err)
	}
	if problems, err := testutil.CollectAndLint(m.HTTPRequestDuration); err != nil || len(problems) > 0 {
		t.Errorf("duration vector: %v %v", problems, err)
	}

	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"orderflow_errors_total":                  false,
		"orderflow_http_request_duration_seconds": false,
		"orderflow_workerpool_wait_seconds":       false,
		"orderflow_workerpool_queue_depth":        false,
		"orderflow_workerpool_rejected_total":     false,
		"orderflow_order_applies_deferred_total":  false,
		"orderflow_order_writes_in_flight":        false,
		"go_goroutines":                           false,
		"process_start_time_seconds":              false,
	}
	for _, mf := range mfs {
		if _, ok := want[mf.GetName()]; ok {
			want[mf.GetName()] = true
		}
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("metric %s not gathered", name)
		}
	}
}

type fakeOrder struct{}

func (fakeOrder) Stats() order.Stats { return order.Stats{InFlight: 3, Applying: 2, Deferred: 1} }

func TestErrorsStartAtZeroForEveryCode(t *testing.T) {
	m := telemetry.New()
	if got := testutil.CollectAndCount(m.Errors); got != 10 {
		t.Errorf("errors series = %d, want one per code (10)", got)
	}
}

func TestLoggerAddsTraceIDs(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	tests := []struct {
		name      string
		ctx       context.Context
		wantTrace string
	}{
		{"WithSpan", trace.ContextWithSpanContext(context.Background(), sc), tid.String()},
		{"WithoutSpan", context.Background(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := telemetry.NewLogger(&buf, slog.LevelInfo).With("component", "test")
			log.InfoContext(tt.ctx, "hello", "n", 1)
			log.DebugContext(tt.ctx, "filtered out by level")
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("got %d lines, want 1: %q", len(lines), buf.String())
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
				t.Fatal(err)
			}
			got, _ := rec["trace_id"].(string)
			if got != tt.wantTrace {
				t.Errorf("trace_id = %q, want %q", got, tt.wantTrace)
			}
			if tt.wantTrace != "" && rec["span_id"] != sid.String() {
				t.Errorf("span_id = %v, want %s", rec["span_id"], sid)
			}
			if rec["component"] != "test" || rec["msg"] != "hello" {
				t.Errorf("record lost attributes: %v", rec)
			}
		})
	}
}

func TestSetupTracingGivesRealIDs(t *testing.T) {
	shutdown, err := telemetry.SetupTracing(context.Background(), telemetry.TracingConfig{ServiceName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		otel.SetTracerProvider(noop.NewTracerProvider())
	}()
	ctx, span := otel.Tracer("test").Start(context.Background(), "op")
	defer span.End()
	if !span.SpanContext().IsValid() || !span.SpanContext().IsSampled() {
		t.Fatalf("span context %+v: want valid and sampled", span.SpanContext())
	}
	h := map[string]string{}
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(h))
	if !strings.Contains(h["traceparent"], span.SpanContext().TraceID().String()) {
		t.Errorf("traceparent %q lacks the trace id", h["traceparent"])
	}
}

func TestSetupTracingExportsOTLP(t *testing.T) {
	got := make(chan string, 10)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Method + " " + r.URL.Path
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	shutdown, err := telemetry.SetupTracing(context.Background(), telemetry.TracingConfig{Endpoint: collector.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "op")
	span.End()
	// Shutdown flushes the batch: the export happens before it returns.
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	otel.SetTracerProvider(noop.NewTracerProvider())
	select {
	case req := <-got:
		if req != "POST /v1/traces" {
			t.Errorf("collector got %s", req)
		}
	default:
		t.Fatal("no export reached the collector")
	}
}
