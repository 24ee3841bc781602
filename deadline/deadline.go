// Package deadline gives each layer of a request a time budget that can only
// shrink on the way down: the edge has the most, a service call less, storage
// least, and no layer may use more than what its caller has left.
//
// Budgets travel between processes in the X-Request-Timeout-Ms header:
// Transport writes what is left on every outgoing request and refuses to make
// a call that cannot finish in time; Middleware reads it on the way in and
// sets the request context's deadline to the smaller of that (minus a margin
// for the time the request spent in transit) and the server's own budget.
// Inside a process, Layer, Call and Storage derive a child context for the next
// layer, and Detach starts work that must outlive the request.
//
// The package knows nothing of the domain: the caller decides how an expired
// request is answered (Options.OnExpired).
package deadline

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// Header carries the caller's remaining budget, in whole milliseconds.
const Header = "X-Request-Timeout-Ms"

// Defaults. They are the design's numbers (see DESIGN.md, "Time budgets").
const (
	// DefaultEdge is the budget of a request arriving at the public API.
	DefaultEdge = 1200 * time.Millisecond
	// DefaultCall is the budget of a call between our services.
	DefaultCall = 800 * time.Millisecond
	// DefaultStorage is the budget of one storage operation.
	DefaultStorage = 400 * time.Millisecond
	// DefaultMargin is subtracted from a caller's header: the request spent
	// some of that time on the wire and in queues before we saw it, and the
	// answer needs time to travel back before the caller gives up.
	DefaultMargin = 20 * time.Millisecond
	// DefaultFloor is the least remaining time Transport still calls with: a
	// network round trip plus any useful work does not fit in less.
	DefaultFloor = 5 * time.Millisecond
)

// maxHeader bounds accepted header values (about 24 days, far beyond any
// request) so that converting milliseconds to a Duration cannot overflow.
const maxHeader = 1 << 31

// ErrBudgetExhausted is wrapped by Transport's error when too little time is
// left to make a call; the same error also matches context.DeadlineExceeded.
var ErrBudgetExhausted = errors.New("deadline: budget exhausted")

// Budgets are the per-layer budgets of one request. A zero field means its
// default.
type Budgets struct {
	Edge    time.Duration // a request at the public API
	Call    time.Duration // a call between services
	Storage time.Duration // one storage operation
}

// DefaultBudgets returns the design's budgets: 1200 ms, 800 ms, 400 ms.
func DefaultBudgets() Budgets {
	return Budgets{Edge: DefaultEdge, Call: DefaultCall, Storage: DefaultStorage}
}

// withDefaults fills the zero fields.
func (b Budgets) withDefaults() Budgets {
	d := DefaultBudgets()
	if b.Edge <= 0 {
		b.Edge = d.Edge
	}
	if b.Call <= 0 {
		b.Call = d.Call
	}
	if b.Storage <= 0 {
		b.Storage = d.Storage
	}
	return b
}

type budgetsKey struct{}

// WithBudgets returns ctx carrying b (zero fields replaced by defaults), for
// Call and Storage further down. Middleware does this when Options.Budgets is
// set; flags that change the budgets end up here.
func WithBudgets(ctx context.Context, b Budgets) context.Context {
	return context.WithValue(ctx, budgetsKey{}, b.withDefaults())
}

// BudgetsFrom returns the budgets carried by ctx, or DefaultBudgets.
func BudgetsFrom(ctx context.Context) Budgets {
	if b, ok := ctx.Value(budgetsKey{}).(Budgets); ok {
		return b
	}
	return DefaultBudgets()
}

// Layer returns a child of ctx that ends after d or when ctx ends, whichever
// is first: a layer never gets more than its caller has left.
func Layer(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// Call is Layer with the call budget carried by ctx (see WithBudgets).
func Call(ctx context.Context) (context.Context, context.CancelFunc) {
	return Layer(ctx, BudgetsFrom(ctx).Call)
}

// Storage is Layer with the storage budget carried by ctx (see WithBudgets).
func Storage(ctx context.Context) (context.Context, context.CancelFunc) {
	return Layer(ctx, BudgetsFrom(ctx).Storage)
}

// Detach returns a context for work that must outlive the request (sending a
// callback, applying a recorded one): it keeps ctx's values, such as the trace
// span and the budgets, but not its cancellation or deadline, and ends after
// budget instead. The caller owns the cancel function.
func Detach(ctx context.Context, budget time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), budget)
}

// Remaining returns how long ctx has left, and false if it has no deadline.
// The duration is negative once the deadline has passed.
func Remaining(ctx context.Context) (time.Duration, bool) {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0, false
	}
	return time.Until(dl), true
}

// ParseHeader parses an X-Request-Timeout-Ms value: plain decimal digits, at
// most 2^31 ms. Anything else (empty, signs, spaces, fractions, units,
// overflow) is rejected with ok false, and Middleware then ignores the header
// rather than failing the request: a broken client should get its own
// server's budget, not an error nor an infinite deadline.
func ParseHeader(v string) (d time.Duration, ok bool) {
	if v == "" || len(v) > 10 {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms > maxHeader {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// FormatHeader formats d for X-Request-Timeout-Ms, rounding down: claiming a
// millisecond we do not have would let the callee overrun us.
func FormatHeader(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return strconv.FormatInt(int64(d/time.Millisecond), 10)
}
