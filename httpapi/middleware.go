package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/telemetry"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// codeHeader carries an error response's code from WriteError to the
// recorder inside the response's own header map. It travels with the header
// wherever the response really goes, so when a timeout wrapper (deadline)
// drops a late handler response and answers 504 itself, the code counted is
// the one the client got. The recorder deletes it before the header is sent.
const codeHeader = "X-Orderflow-Internal-Error-Code"

// recorder remembers what a handler answered, for metrics and logs.
type recorder struct {
	http.ResponseWriter
	status     int
	wrote      bool
	errCode    string // the code of the error response sent, from codeHeader
	err        error  // the cause WriteError was given, for the log only
	retryAfter string
}

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
		h := r.ResponseWriter.Header()
		if c := h.Get(codeHeader); c != "" {
			r.errCode = c
		}
		h.Del(codeHeader)
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.WriteHeader(http.StatusOK)
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// asRecorder finds our recorder under any wrappers that implement Unwrap.
func asRecorder(w http.ResponseWriter) *recorder {
	for {
		switch v := w.(type) {
		case *recorder:
			return v
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return nil
		}
	}
}

// instrumenter wraps each route's handler: duration histogram by route
// pattern and status class, the error counter, panic recovery, and a log line
// for internal errors (the only ones whose detail matters to us).
type instrumenter struct {
	metrics    *telemetry.Metrics // nil: no metrics
	log        *slog.Logger
	retryAfter string
}

func (in *instrumenter) wrap(route string, h http.Handler) http.Handler {
	var obs *routeObservers
	if in.metrics != nil {
		obs = &routeObservers{vec: in.metrics.HTTPRequestDuration, route: route}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
			span.SetName(route)
			span.SetAttributes(attribute.String("http.route", route))
		}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK, retryAfter: in.retryAfter}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				in.log.ErrorContext(r.Context(), "panic in handler", "route", route, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rec.wrote {
					WriteError(rec, orderflow.Errorf(orderflow.EInternal, "panic"))
				}
			}
			if obs != nil {
				obs.observe(rec.status, time.Since(start))
				if rec.errCode != "" {
					in.metrics.Errors.WithLabelValues(rec.errCode).Inc()
				}
			}
			switch StatusFor(rec.errCode) {
			case http.StatusInternalServerError:
				if rec.errCode != "" {
					in.log.ErrorContext(r.Context(), "request failed", "route", route, "err", rec.err)
				}
			case http.StatusServiceUnavailable, http.StatusGatewayTimeout:
				in.log.WarnContext(r.Context(), "request failed", "route", route, "err", rec.err)
			}
		}()
		h.ServeHTTP(rec, r)
	})
}

// classNames are the status-class labels, indexed by classIndex.
var classNames = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func classIndex(status int) int {
	if status < 100 || status > 599 {
		return 0
	}
	return status / 100
}

// routeObservers are one route's duration histograms, one per status class,
// looked up in the vector once each and kept: WithLabelValues per request
// hashed the labels and took the vector's lock on every response. A class is
// looked up on its first response, so the exported series are the same as
// before (none for a class never answered).
type routeObservers struct {
	vec   *prometheus.HistogramVec
	route string
	class [len(classNames)]atomic.Pointer[prometheus.Observer]
}

func (o *routeObservers) observe(status int, d time.Duration) {
	i := classIndex(status)
	p := o.class[i].Load()
	if p == nil {
		h := o.vec.WithLabelValues(o.route, classNames[i])
		p = &h
		o.class[i].Store(p) // a racing first response stores the same child
	}
	(*p).Observe(d.Seconds())
}
