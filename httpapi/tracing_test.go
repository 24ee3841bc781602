package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/telemetry"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace/noop"
)

// The caller's trace context reaches the outbox event of the order it
// created, so the risk engine's work joins the caller's trace.
func TestTraceContextReachesOutbox(t *testing.T) {
	shutdown, err := telemetry.SetupTracing(context.Background(), telemetry.TracingConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = shutdown(context.Background())
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
	}()
	s := newServer(t, serverOpts{})
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := s.createOrder(t, orderBody("u_1"), "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var headers string
	if err := s.store.ReadDB().QueryRow(`SELECT headers FROM outbox WHERE order_id = ?`, r.json(t)["id"]).Scan(&headers); err != nil {
		t.Fatal(err)
	}
	var h map[string]string
	if err := json.Unmarshal([]byte(headers), &h); err != nil {
		t.Fatal(err)
	}
	// Same trace, new span (the server's), sampled.
	if tp := h["traceparent"]; !strings.HasPrefix(tp, "00-"+traceID+"-") || strings.Contains(tp, "00f067aa0ba902b7") || !strings.HasSuffix(tp, "-01") {
		t.Errorf("outbox traceparent = %q, want trace %s with the server's span", tp, traceID)
	}
}

// With the no-op tracer provider (no exporter: the server does not start
// spans of its own), the caller's trace context still reaches the outbox
// unchanged, so the risk engine's logs carry the caller's trace id.
func TestTraceContextReachesOutboxWithoutTracing(t *testing.T) {
	otel.SetTracerProvider(noop.NewTracerProvider())
	telemetry.InstallPropagator()
	defer otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
	s := newServer(t, serverOpts{})
	for _, tc := range []struct {
		name, user, traceparent, want string
	}{
		{"sampled parent", "u_1", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{"unsampled parent", "u_2", "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b8-00", "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b8-00"},
		{"malformed", "u_3", "00-zz-00f067aa0ba902b7-01", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.createOrder(t, orderBody(tc.user), "traceparent", tc.traceparent)
			if r.status != http.StatusCreated {
				t.Fatalf("%d %s", r.status, r.body)
			}
			var headers string
			if err := s.store.ReadDB().QueryRow(`SELECT headers FROM outbox WHERE order_id = ?`, r.json(t)["id"]).Scan(&headers); err != nil {
				t.Fatal(err)
			}
			var h map[string]string
			if headers != "" {
				if err := json.Unmarshal([]byte(headers), &h); err != nil {
					t.Fatal(err)
				}
			}
			if got := h["traceparent"]; got != tc.want {
				t.Errorf("outbox traceparent = %q, want %q", got, tc.want)
			}
		})
	}
}
