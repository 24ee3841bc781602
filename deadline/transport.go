package deadline

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Transport is an http.RoundTripper that passes the request context's
// remaining budget to the callee in X-Request-Timeout-Ms, and refuses, without
// touching the network, a call that has less than Floor left: it could not
// finish in time, and the callee would only do work nobody waits for.
//
// A request whose context has no deadline goes out unchanged. The zero value
// is usable and wraps http.DefaultTransport.
type Transport struct {
	// Base makes the actual call. Nil means http.DefaultTransport.
	Base http.RoundTripper
	// Floor is the least remaining time worth a call. Zero means
	// DefaultFloor; negative means calls are made down to the last
	// millisecond.
	Floor time.Duration
}

var _ http.RoundTripper = (*Transport)(nil)

// RoundTrip implements http.RoundTripper. The refusal error wraps both
// ErrBudgetExhausted and context.DeadlineExceeded, so callers that only know
// the latter treat it as the timeout it is.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	left, ok := Remaining(req.Context())
	if !ok {
		return base.RoundTrip(req)
	}
	floor := t.Floor
	switch {
	case floor == 0:
		floor = DefaultFloor
	case floor < 0:
		floor = time.Millisecond // less than that cannot be written in the header
	}
	if left < floor {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper closes the body, even on error
		}
		return nil, fmt.Errorf("deadline: %s %s: %v left, less than %v: %w (%w)",
			req.Method, req.URL.Redacted(), left.Round(time.Microsecond), floor, ErrBudgetExhausted, context.DeadlineExceeded)
	}
	// A RoundTripper must not modify the caller's request: copy it and the
	// header map, but share the rest (body, context).
	out := new(http.Request)
	*out = *req
	out.Header = req.Header.Clone()
	if out.Header == nil {
		out.Header = make(http.Header, 1)
	}
	out.Header[Header] = []string{FormatHeader(left)} // Header is canonical already
	return base.RoundTrip(out)
}
