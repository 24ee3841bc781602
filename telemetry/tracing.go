package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// TracingConfig describes the process's OpenTelemetry tracing.
type TracingConfig struct {
	// ServiceName is the service.name resource attribute ("orderflow").
	ServiceName string
	// Endpoint is an OTLP/HTTP collector, host:port or URL. Empty exports
	// nothing, but spans still get real trace and span ids, so log lines and
	// outbox event headers carry a trace context that ties a request to the
	// callback it eventually causes.
	Endpoint string
	// Insecure sends to Endpoint over plain HTTP.
	Insecure bool
	// SampleRatio is the fraction of new traces sampled (0 means 1: sample
	// all). A request that arrives with a sampled parent is always sampled.
	SampleRatio float64
}

// SetupTracing installs a global TracerProvider built from cfg, and the W3C
// trace-context propagator (InstallPropagator). The returned shutdown
// flushes and stops the exporter's goroutine; the caller owns it and calls it
// on the way out, after the servers have stopped.
func SetupTracing(ctx context.Context, cfg TracingConfig) (shutdown func(context.Context) error, err error) {
	if cfg.ServiceName == "" {
		cfg.ServiceName = "orderflow"
	}
	ratio := cfg.SampleRatio
	if ratio <= 0 || ratio > 1 {
		ratio = 1
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(cfg.ServiceName)))
	if err != nil {
		return nil, fmt.Errorf("telemetry: tracing resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	}
	if cfg.Endpoint != "" {
		eopts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(endpointURL(cfg.Endpoint, cfg.Insecure))}
		exp, err := otlptracehttp.New(ctx, eopts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: otlp exporter for %s: %w", cfg.Endpoint, err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	InstallPropagator()
	return func(ctx context.Context) error {
		if err := tp.Shutdown(ctx); err != nil {
			return errors.Join(errors.New("telemetry: tracing shutdown"), err)
		}
		return nil
	}, nil
}

// endpointURL accepts host:port or a URL; a URL without a path gets the
// OTLP default /v1/traces, as the bare host:port form does.
func endpointURL(endpoint string, insecure bool) string {
	if !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		scheme := "https://"
		if insecure {
			scheme = "http://"
		}
		endpoint = scheme + endpoint
	}
	if u, err := url.Parse(endpoint); err == nil && (u.Path == "" || u.Path == "/") {
		u.Path = "/v1/traces"
		return u.String()
	}
	return endpoint
}
