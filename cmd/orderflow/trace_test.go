package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TestServeOneTraceFromCreateToApply is Must-show 4: with an in-memory span
// exporter, one order's create request, its scoring by the engine (which
// reads the trace context from the outbox event's headers), the callback
// request (client and server side) and the apply on the worker pool all
// carry ONE trace id.
func TestServeOneTraceFromCreateToApply(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		_ = tp.Shutdown(context.Background())
	})
	s := startServe(t, nil)
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	id := createOrder(t, client, s.public, "u_trace")

	want := []struct {
		name string
		kind trace.SpanKind
	}{
		{"POST /v1/orders", trace.SpanKindServer},
		{"risk.handle order.created", trace.SpanKindConsumer},
		{"risk.score", trace.SpanKindInternal},
		{"", trace.SpanKindClient}, // the callback request, named by otelhttp
		{"POST /v1/risk/callbacks", trace.SpanKindServer},
		{"order.apply", trace.SpanKindInternal},
	}
	var spans tracetest.SpanStubs
	found := func() (bool, int, string) {
		spans = exp.GetSpans()
		var create *tracetest.SpanStub
		for i := range spans {
			if spans[i].Name == "POST /v1/orders" {
				create = &spans[i]
			}
		}
		if create == nil {
			return false, len(spans), "no create span yet"
		}
		tid := create.SpanContext.TraceID()
		missing := ""
		for _, w := range want {
			ok := false
			for _, sp := range spans {
				if sp.SpanContext.TraceID() == tid && sp.SpanKind == w.kind && (w.name == "" || sp.Name == w.name) {
					ok = true
				}
			}
			if !ok {
				missing += " " + w.name + "(" + w.kind.String() + ")"
			}
		}
		return missing == "", len(spans), "missing from trace " + tid.String() + ":" + missing
	}
	waitFor(t, 30*time.Second, "one trace from create to apply of "+id, found)
	for _, sp := range spans {
		t.Logf("%s %-28s %s parent %s", sp.SpanContext.TraceID(), sp.Name, sp.SpanKind, sp.Parent.SpanID())
	}
}
