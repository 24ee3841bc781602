package main

import (
	"context"
	"fmt"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// setupTracing returns the process's tracer provider. Spans are exported
// over OTLP/HTTP only when OTEL_EXPORTER_OTLP_ENDPOINT (or its traces-only
// variant) is set; the exporter reads the rest of the standard OTEL_*
// variables itself. Otherwise the provider is a no-op: a span then costs a
// context lookup and no allocation, so tracing stays compiled in and nearly
// free. Trace context is still propagated (the W3C propagator is global), so
// a process behind a traced one keeps the trace id in its logs.
//
// The returned function flushes and stops the exporter.
func setupTracing(ctx context.Context, getenv func(string) string, version string) (trace.TracerProvider, func(context.Context) error, error) {
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", "orderflow"),
		attribute.String("service.version", version),
	)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}

// tracerProvider is the process's provider: the global one, which
// runServer sets and httpapi's server spans use too.
func (a *app) tracerProvider() trace.TracerProvider { return otel.GetTracerProvider() }

// tracedTransport is otelhttp's client transport (a client span per call,
// the trace context injected) when the global tracer provider records, and
// only the injection when it is the no-op one: with the no-op provider the
// span otelhttp starts is the caller's span context, so the headers are the
// same, without the attribute set, the no-op metric records and the body
// wrapper it builds per call (a callback per decided order in serve).
type tracedTransport struct {
	full http.RoundTripper // otelhttp
	base http.RoundTripper
}

func newTracedTransport(base http.RoundTripper) http.RoundTripper {
	return &tracedTransport{full: otelhttp.NewTransport(base, otelhttp.WithTracerProvider(otel.GetTracerProvider())), base: base}
}

func (t *tracedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, off := otel.GetTracerProvider().(noop.TracerProvider); !off {
		return t.full.RoundTrip(r)
	}
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(r.Context(), carrier)
	if len(carrier) == 0 {
		return t.base.RoundTrip(r)
	}
	r = r.Clone(r.Context()) // a RoundTripper must not modify the caller's request
	for k, v := range carrier {
		r.Header.Set(k, v)
	}
	return t.base.RoundTrip(r)
}
