package chaos

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// Middleware applies the server-side faults before next: first the latency
// (cut short when the request's context ends, after which next runs and
// answers as it would for any ended request), then maybe the error status
// (written by Config.WriteError, next not called) or a dropped connection
// (panic(http.ErrAbortHandler), which net/http turns into a silent abort; a
// recovery middleware outside this one must re-panic it). A nil Injector
// returns next unchanged.
//
// Mount it inside the deadline and metrics middleware, so that injected
// latency is charged to the request's budget and shows in the latency
// histogram, and injected errors are counted like real ones.
func (inj *Injector) Middleware(next http.Handler) http.Handler {
	if inj == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := inj.state.Load()
		if !st.server {
			next.ServeHTTP(w, r)
			return
		}
		if d := inj.delay(st, Server, r.URL.Path); d > 0 {
			inj.stats.add(Server, faultLatency)
			_ = sleep(r.Context(), d) // an ended request goes on to next, which sees ctx.Err()
		}
		if e := inj.failure(st, Server, r.URL.Path); e != nil {
			if e.Drop {
				inj.stats.add(Server, faultDrop)
				panic(http.ErrAbortHandler)
			}
			inj.stats.add(Server, faultError)
			w.Header().Set(InjectedHeader, "error")
			inj.writeError(w, r, e.Status)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// InjectedHeader marks responses made by the injector, so an operator
// reading a trace or a curl output can tell an injected failure from a real
// one.
const InjectedHeader = "X-Chaos-Injected"

// Transport applies the client-side faults before base: the latency
// (returning the context's error if it ends first), then maybe a
// synthesized error response (never sent to the server) or ErrDropped. A
// nil base means http.DefaultTransport; a nil Injector returns base.
func (inj *Injector) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if inj == nil {
		return base
	}
	return &transport{inj: inj, base: base}
}

type transport struct {
	inj  *Injector
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	inj := t.inj
	st := inj.state.Load()
	if !st.client {
		return t.base.RoundTrip(req)
	}
	if d := inj.delay(st, Client, req.URL.Path); d > 0 {
		inj.stats.add(Client, faultLatency)
		if err := sleep(req.Context(), d); err != nil {
			closeBody(req) // a RoundTripper closes the body even on error
			return nil, err
		}
	}
	if e := inj.failure(st, Client, req.URL.Path); e != nil {
		closeBody(req)
		if e.Drop {
			inj.stats.add(Client, faultDrop)
			return nil, ErrDropped
		}
		inj.stats.add(Client, faultError)
		return inj.synthesize(req, e.Status), nil
	}
	return t.base.RoundTrip(req)
}

// CloseIdleConnections forwards to base, so http.Client.CloseIdleConnections
// still reaches the pool through the injector.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// synthesize builds the response the server middleware would have written,
// through the same WriteError, so both sides fail in the same format.
func (inj *Injector) synthesize(req *http.Request, status int) *http.Response {
	rec := &recorder{header: make(http.Header)}
	rec.header.Set(InjectedHeader, "error")
	inj.writeError(rec, req, status)
	if rec.status == 0 {
		rec.status = status
	}
	return &http.Response{
		Status:        strconv.Itoa(rec.status) + " " + http.StatusText(rec.status),
		StatusCode:    rec.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rec.header,
		Body:          io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		ContentLength: int64(rec.body.Len()),
		Request:       req,
	}
}

// recorder is the minimal http.ResponseWriter synthesize needs; it keeps
// net/http/httptest out of production code.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(p)
}

// WriteJSONError is the default Config.WriteError: the project's API error
// body with the code that matches status, and Retry-After: 1 on 429 and 503
// so well-behaved clients back off instead of hammering.
//
//	{"error":{"code":"unavailable","message":"chaos"}}
func WriteJSONError(w http.ResponseWriter, _ *http.Request, status int) {
	code := codeForStatus(status)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	field := ""
	if code == "invalid_argument" {
		field = `,"field":""` // the API requires field on invalid_argument
	}
	fmt.Fprintf(w, `{"error":{"code":%q,"message":"chaos"%s}}`+"\n", code, field)
}

// codeForStatus inverts the API's code→status table; statuses it does not
// list fall back to the code of their class.
func codeForStatus(status int) string {
	switch status {
	case 400:
		return "invalid_argument"
	case 401:
		return "unauthenticated"
	case 404:
		return "not_found"
	case 409:
		return "conflict"
	case 413:
		return "payload_too_large"
	case 415:
		return "unsupported_media_type"
	case 429:
		return "resource_exhausted"
	case 502, 503:
		return "unavailable"
	case 504:
		return "deadline_exceeded"
	}
	if status < 500 {
		return "invalid_argument"
	}
	return "internal"
}
