package httpclient

import (
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"sync"
	"sync/atomic"
)

// accountingTransport is the outermost RoundTripper: it sees the request as
// the caller made it and the response exactly as the caller receives it, so
// the body it wraps is the one the caller must close.
type accountingTransport struct {
	next http.RoundTripper
	acct *accounting
}

func (t *accountingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	a := t.acct
	a.requests.Add(1)
	// A fresh ClientTrace per request: WithClientTrace composes it with any
	// trace already in the context by mutating it, so it cannot be shared.
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if info.Reused {
				a.connsReused.Add(1)
			} else {
				a.connsNew.Add(1)
			}
		},
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		a.errors.Add(1)
		return resp, err
	}
	// NoBody holds no connection and closing it does nothing, so it is not
	// counted: a HEAD request whose body is never closed leaks nothing.
	if resp.Body != nil && resp.Body != http.NoBody {
		resp.Body = a.wrapBody(resp.Body, req)
	}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport through this wrapper and any Wrap layers that forward it.
func (t *accountingTransport) CloseIdleConnections() {
	type closeIdler interface{ CloseIdleConnections() }
	if c, ok := t.next.(closeIdler); ok {
		c.CloseIdleConnections()
	}
}

func (a *accounting) wrapBody(body io.ReadCloser, req *http.Request) io.ReadCloser {
	a.bodiesOpened.Add(1)
	b := &countedBody{ReadCloser: body, acct: a}
	if a.tracker != nil {
		b.id = a.tracker.add(req.Method + " " + req.URL.Redacted())
	}
	// A 101 Switching Protocols body is also the connection's writer;
	// keep that capability visible to the caller.
	if w, ok := body.(io.Writer); ok {
		return &countedRWBody{countedBody: b, w: w}
	}
	return b
}

// countedBody decrements the open-bodies gauge on the first Close only:
// closing twice is legal and must not drive the gauge negative.
type countedBody struct {
	io.ReadCloser
	acct   *accounting
	id     uint64
	closed atomic.Bool
}

func (b *countedBody) Close() error {
	err := b.ReadCloser.Close()
	if b.closed.CompareAndSwap(false, true) {
		if b.acct.tracker != nil {
			b.acct.tracker.remove(b.id)
		}
		b.acct.bodiesClosed.Add(1)
	}
	return err
}

type countedRWBody struct {
	*countedBody
	w io.Writer
}

func (b *countedRWBody) Write(p []byte) (int, error) { return b.w.Write(p) }

// bodyTracker remembers which requests own the open bodies, for the failure
// message of CheckBodies.
type bodyTracker struct {
	mu   sync.Mutex
	next uint64
	open map[uint64]string
}

func newBodyTracker() *bodyTracker { return &bodyTracker{open: make(map[uint64]string)} }

func (t *bodyTracker) add(name string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	t.open[t.next] = name
	return t.next
}

func (t *bodyTracker) remove(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.open, id)
}

func (t *bodyTracker) names() []string {
	t.mu.Lock()
	ids := make([]uint64, 0, len(t.open))
	for id := range t.open {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = t.open[id]
	}
	t.mu.Unlock()
	return out
}
