package httpapi

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace/noop"
)

// traced puts h behind a server span per request (otelhttp, global tracer
// provider), child of the caller's traceparent when there is one: its
// context reaches the logs (trace_id) and the outbox event headers, so the
// risk engine's work joins the same trace. The instrumenter renames it after
// the route pattern.
//
// When the global provider is the no-op one (no exporter configured), the
// span otelhttp would start is the caller's span context or none, which is
// exactly what extracting the propagated context gives; so that case only
// extracts. otelhttp with the no-op provider still built the request's
// attribute set, recorded to the no-op meter and wrapped the writer and the
// body: ~5 % of serve's CPU and ~9 % of its allocated bytes per decided order
// (docs/benchmarks/pipeline.md). The provider is looked up per request, so a
// provider installed later (tests, SetupTracing) is honoured at once.
func traced(h http.Handler) http.Handler {
	full := otelhttp.NewHandler(h, "http.request")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, off := otel.GetTracerProvider().(noop.TracerProvider); !off {
			full.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		if pctx := otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(r.Header)); pctx != ctx {
			r = r.WithContext(pctx)
		}
		h.ServeHTTP(w, r)
	})
}
