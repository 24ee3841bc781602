package deadline

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Options configure Middleware. The zero value is valid.
type Options struct {
	// Margin is subtracted from the caller's X-Request-Timeout-Ms. Zero means
	// DefaultMargin; negative means none.
	Margin time.Duration
	// OnExpired answers a request whose budget is gone before it starts or
	// runs out before the handler wrote anything. The HTTP layer sets it to
	// write the API's 504 deadline_exceeded body. It may run on a goroutine
	// other than the handler's, never at the same time as the handler writes,
	// and only before Middleware returns. When it answers for a running
	// handler, its output is buffered and sent with a Content-Length and
	// flushed, so the client has the whole answer at the deadline even if
	// the handler is stuck. Nil writes a plain-text 504.
	OnExpired func(w http.ResponseWriter, r *http.Request)
	// Budgets, when any field is set, are attached to the request context
	// (WithBudgets) for Call and Storage further down.
	Budgets Budgets
}

// Middleware bounds every request by a deadline: own (this server's budget;
// zero or negative means none of its own) or the caller's
// X-Request-Timeout-Ms minus the margin, whichever is smaller. A missing or
// malformed header is ignored (see ParseHeader). An earlier deadline already
// on the request context still wins.
//
// If the budget is gone on arrival, the handler is not called and OnExpired
// answers. Otherwise the handler runs on the request's goroutine with the
// deadline on its context; if the deadline passes before the handler has
// written anything, OnExpired answers at once (the client is not kept waiting
// on a handler that ignores its context) and everything the handler writes
// afterwards is discarded, its Write returning http.ErrHandlerTimeout. Once
// the handler has started its response, it owns it to the end.
//
// Until it writes, the handler's Header() is a private copy, merged into the
// real one on its first write: the 504 may be written concurrently and must
// not share a map with the handler. Nothing touches the response after
// Middleware returns: the timer's callback writes only under the response
// lock and only before Middleware, which takes that lock last, marks it done.
// The handler itself is never abandoned on another goroutine.
func Middleware(own time.Duration, opts Options) func(http.Handler) http.Handler {
	margin := opts.Margin
	switch {
	case margin == 0:
		margin = DefaultMargin
	case margin < 0:
		margin = 0
	}
	onExpired := opts.OnExpired
	if onExpired == nil {
		onExpired = plainExpired
	}
	var zero Budgets
	setBudgets := opts.Budgets != zero
	budgets := opts.Budgets.withDefaults()

	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			budget, limited := own, own > 0
			if d, ok := ParseHeader(r.Header.Get(Header)); ok {
				if d -= margin; !limited || d < budget {
					budget, limited = d, true
				}
			}
			ctx := r.Context()
			if setBudgets {
				ctx = context.WithValue(ctx, budgetsKey{}, budgets)
			}
			if !limited {
				next.ServeHTTP(w, r.WithContext(ctx))
				return
			}
			if budget <= 0 {
				onExpired(w, r)
				return
			}
			ctx, cancel := context.WithTimeout(ctx, budget)
			defer cancel()
			dl, _ := ctx.Deadline()
			left := time.Until(dl)
			if left <= 0 {
				onExpired(w, r) // an earlier deadline on the request has passed
				return
			}
			tw := &timeoutWriter{w: w, r: r, ctx: ctx, deadline: dl, onExpired: onExpired}
			// A plain timer rather than context.AfterFunc: the latter also
			// registers a child in the parent context, which costs a map
			// per request for a cancellation we do not need to act on.
			timer := time.AfterFunc(left, tw.expire)
			defer timer.Stop()
			next.ServeHTTP(tw, r.WithContext(ctx))
			tw.finish()
		})
	}
}

func plainExpired(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "deadline exceeded", http.StatusGatewayTimeout)
}

// timeoutWriter stands between the handler and the real ResponseWriter until
// the handler commits to a response or the deadline answers for it.
type timeoutWriter struct {
	w         http.ResponseWriter
	r         *http.Request // the original request, for onExpired
	ctx       context.Context
	deadline  time.Time
	onExpired func(http.ResponseWriter, *http.Request)

	mu        sync.Mutex
	h         http.Header // the handler's headers until committed; nil until asked for
	committed bool        // the handler's response went to w: only the handler writes now
	expired   bool        // onExpired answered: the handler's writes are dropped
	done      bool        // Middleware returned: w must not be touched
}

// Header returns the handler's private header map before its first write and
// the real one after (trailers are set after the first write).
func (tw *timeoutWriter) Header() http.Header {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.committed {
		return tw.w.Header()
	}
	if tw.h == nil {
		tw.h = tw.w.Header().Clone()
		if tw.h == nil {
			tw.h = http.Header{}
		}
	}
	return tw.h
}

// commit hands the response to the handler unless the deadline answered
// first; it reports whether the handler may write. Called by the handler's
// goroutine only, so committed may be read there without the lock.
func (tw *timeoutWriter) commit() bool {
	if tw.committed {
		return true
	}
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.expired {
		return false
	}
	if tw.pastDeadline() {
		tw.answer()
		return false
	}
	tw.mergeHeader()
	tw.committed = true
	return true
}

// mergeHeader makes the real header map equal to the handler's copy.
// Called with mu held.
func (tw *timeoutWriter) mergeHeader() {
	if tw.h == nil {
		return // the handler never asked: the real map is as it was
	}
	dst := tw.w.Header()
	for k := range dst {
		if _, ok := tw.h[k]; !ok {
			delete(dst, k)
		}
	}
	for k, v := range tw.h {
		dst[k] = v
	}
}

func (tw *timeoutWriter) WriteHeader(code int) {
	if tw.commit() {
		tw.w.WriteHeader(code)
	}
}

func (tw *timeoutWriter) Write(b []byte) (int, error) {
	if !tw.commit() {
		return 0, http.ErrHandlerTimeout
	}
	return tw.w.Write(b)
}

// Flush commits the response and flushes it, so streaming handlers work.
func (tw *timeoutWriter) Flush() {
	if tw.commit() {
		_ = http.NewResponseController(tw.w).Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer for deadlines.
// Hijacking through it bypasses the timeout and is the caller's business.
func (tw *timeoutWriter) Unwrap() http.ResponseWriter { return tw.w }

// expire runs on the timer's goroutine when the deadline passes.
func (tw *timeoutWriter) expire() {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.done || tw.committed || tw.expired || tw.r.Context().Err() != nil {
		// An ended request context means the client went away: there is
		// nobody to answer.
		return
	}
	tw.answer()
}

// pastDeadline decides by the clock, not only by ctx.Err(): the context's
// timer may not have fired yet although the time is up, and a handler that
// watched the clock must not turn into an empty 200.
func (tw *timeoutWriter) pastDeadline() bool {
	return tw.ctx.Err() == context.DeadlineExceeded || !time.Now().Before(tw.deadline)
}

// answer writes the 504 and pushes it out now: the handler may still be
// running, and the response would otherwise wait for it. The hook's output is
// buffered so it goes out with a Content-Length: a flushed response without
// one is chunked and not complete for the client until the handler returns.
// Called with mu held; the handler writes only its private header map, so
// the real one is ours here.
func (tw *timeoutWriter) answer() {
	tw.expired = true
	bw := &bufferedWriter{h: tw.w.Header()}
	tw.onExpired(bw, tw.r)
	if bw.code == 0 {
		bw.code = http.StatusOK // as net/http would: the hook chose to write nothing else
	}
	if bw.h.Get("Content-Length") == "" {
		bw.h.Set("Content-Length", strconv.Itoa(bw.buf.Len()))
	}
	tw.w.WriteHeader(bw.code)
	_, _ = tw.w.Write(bw.buf.Bytes())
	_ = http.NewResponseController(tw.w).Flush()
}

// bufferedWriter collects OnExpired's response.
type bufferedWriter struct {
	h    http.Header
	code int
	buf  bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.h }

func (b *bufferedWriter) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.buf.Write(p)
}

// finish runs on the handler's goroutine after it returned.
func (tw *timeoutWriter) finish() {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	tw.done = true
	if tw.committed || tw.expired {
		return
	}
	if tw.pastDeadline() {
		// The handler saw the deadline and returned without a word: answer
		// for it.
		tw.answer()
		return
	}
	tw.mergeHeader() // a handler may set headers and let net/http send the 200
}
