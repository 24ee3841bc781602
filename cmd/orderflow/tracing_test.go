package main

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderflow/orderflow/telemetry"
)

// roundTripFunc records the request a transport passed on.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// With the no-op tracer provider, tracedTransport still sends the caller's
// trace context on, on a copy of the request.
func TestTracedTransportWithoutTracing(t *testing.T) {
	otel.SetTracerProvider(noop.NewTracerProvider())
	telemetry.InstallPropagator()
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 1},
		SpanID:     trace.SpanID{0x00, 0xf0, 2},
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"caller's context", trace.ContextWithRemoteSpanContext(context.Background(), sc), "00-4bf90100000000000000000000000000-00f0020000000000-01"},
		{"no context", context.Background(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *http.Request
			rt := newTracedTransport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				got = r
				return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
			}))
			req, err := http.NewRequestWithContext(tc.ctx, http.MethodPost, "http://127.0.0.1:1/v1/risk/callbacks", http.NoBody)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rt.RoundTrip(req); err != nil {
				t.Fatal(err)
			}
			if tp := got.Header.Get("traceparent"); tp != tc.want {
				t.Errorf("sent traceparent = %q, want %q", tp, tc.want)
			}
			if tp := req.Header.Get("traceparent"); tp != "" {
				t.Errorf("the caller's request was modified: traceparent %q", tp)
			}
		})
	}
}
