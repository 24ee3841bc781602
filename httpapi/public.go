// Package httpapi is the HTTP transport of the order service: the public
// listener (orders, risk callbacks, health) and the admin listener (metrics,
// pprof), exactly as API.md describes them. Handlers decode strictly, call
// the order service, and map its *orderflow.Error codes to statuses in one
// place (StatusFor). They start no goroutines.
package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/deadline"
	"github.com/orderflow/orderflow/httpapi/callbacksig"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/telemetry"
)

// MaxBodyBytes caps every request body (API.md: over 64 KiB is 413).
const MaxBodyBytes = 64 << 10

// Defaults for the zero fields of PublicConfig.
const (
	DefaultRetryAfter   = time.Second
	DefaultReadyTimeout = 2 * time.Second
)

// PublicConfig wires the public handler. Service and CallbackSecrets are
// required; the rest is optional.
type PublicConfig struct {
	Service *order.Service
	// CallbackSecrets verify X-Orderflow-Signature; any one of them may have
	// signed (rotation).
	CallbackSecrets [][]byte
	// APITokens, when not empty, are the bearer tokens every /v1/orders…
	// request must present (several, for rotation).
	APITokens []string
	// Ready are the dependencies /readyz pings, by the name it reports.
	Ready map[string]orderflow.Pinger
	// Metrics, when set, receives request durations and error counts.
	Metrics *telemetry.Metrics
	Logger  *slog.Logger // slog.Default()
	// Now is the clock the signature window is checked against (time.Now).
	Now func() time.Time
	// SignatureTolerance is the signature timestamp window
	// (callbacksig.DefaultTolerance, 300 s).
	SignatureTolerance time.Duration
	// RetryAfter is what 429 and 503 answers advise (DefaultRetryAfter);
	// it is sent in whole seconds, at least 1.
	RetryAfter time.Duration
	// ReadyTimeout bounds each /readyz ping (DefaultReadyTimeout).
	ReadyTimeout time.Duration
	// Budgets bound every request: the handler runs with the smaller of
	// Budgets.Edge and the caller's X-Request-Timeout-Ms minus DeadlineMargin
	// (deadline.Middleware), and the budgets ride on the context for the
	// layers below (deadline.Call, deadline.Storage). A request whose budget
	// runs out before it answered gets 504 deadline_exceeded at once. The zero
	// value sets no budget of its own but still honours the caller's header.
	Budgets deadline.Budgets
	// DeadlineMargin is subtracted from X-Request-Timeout-Ms
	// (deadline.Options.Margin: zero means deadline.DefaultMargin).
	DeadlineMargin time.Duration
	// Extra mounts more handlers on the same mux by ServeMux pattern, with
	// the same instrumentation and deadline: the risk engine's routes when
	// one process serves both (orderflow serve).
	Extra map[string]http.Handler
}

type public struct {
	svc       *order.Service
	secrets   [][]byte
	tokens    [][sha256.Size]byte
	ready     map[string]orderflow.Pinger
	log       *slog.Logger
	now       func() time.Time
	tolerance time.Duration
	readyTO   time.Duration
}

// NewPublic returns the public listener's handler: every route of API.md
// except the risk engine's and the admin ones. It panics when Service or
// CallbackSecrets is missing, which is a wiring bug, not a runtime state.
func NewPublic(cfg PublicConfig) http.Handler {
	if cfg.Service == nil {
		panic("httpapi: PublicConfig.Service is required")
	}
	if len(cfg.CallbackSecrets) == 0 {
		panic("httpapi: PublicConfig.CallbackSecrets is required")
	}
	p := &public{
		svc:       cfg.Service,
		secrets:   cfg.CallbackSecrets,
		ready:     cfg.Ready,
		log:       cfg.Logger,
		now:       cfg.Now,
		tolerance: cfg.SignatureTolerance,
		readyTO:   cfg.ReadyTimeout,
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.tolerance <= 0 {
		p.tolerance = callbacksig.DefaultTolerance
	}
	if p.readyTO <= 0 {
		p.readyTO = DefaultReadyTimeout
	}
	for _, t := range cfg.APITokens {
		p.tokens = append(p.tokens, sha256.Sum256([]byte(t)))
	}
	in := &instrumenter{metrics: cfg.Metrics, log: p.log, retryAfter: retryAfterSeconds(cfg.RetryAfter)}

	dl := deadline.Middleware(cfg.Budgets.Edge, deadline.Options{
		Margin:  cfg.DeadlineMargin,
		Budgets: cfg.Budgets,
		OnExpired: func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, orderflow.Errorf(orderflow.EDeadlineExceeded, "the request's time budget ran out; the outcome of a write is unknown, retry the same request"), true)
		},
	})
	mux := http.NewServeMux()
	// Instrumentation outside the deadline, so the 504 it may answer is
	// timed and counted like any other response.
	handle := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, in.wrap(pattern, dl(h))) }
	handle("GET /healthz", p.healthz)
	handle("GET /readyz", p.readyz)
	handle("POST /v1/orders", p.auth(p.createOrder))
	handle("GET /v1/orders", p.auth(p.listOrders))
	handle("GET /v1/orders/{id}", p.auth(p.getOrder))
	handle("GET /v1/orders/{id}/events", p.auth(p.orderEvents))
	handle("POST /v1/orders/{id}/cancel", p.auth(p.transition(p.svc.Cancel)))
	handle("POST /v1/orders/{id}/fulfill", p.auth(p.transition(p.svc.Fulfill)))
	handle("POST /v1/risk/callbacks", p.callback)
	for pattern, h := range cfg.Extra {
		mux.Handle(pattern, in.wrap(pattern, dl(h)))
	}
	// Anything else, a wrong method included, is 404 in the error shape:
	// the error codes of API.md have no 405.
	mux.Handle("/", in.wrap("unmatched", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, orderflow.Errorf(orderflow.ENotFound, "no route for %s %s", r.Method, r.URL.Path))
	})))
	return traced(mux)
}

func retryAfterSeconds(d time.Duration) string {
	if d <= 0 {
		d = DefaultRetryAfter
	}
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}

// auth enforces the bearer tokens, when configured.
func (p *public) auth(h http.HandlerFunc) http.HandlerFunc {
	if len(p.tokens) == 0 {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if !p.tokenOK(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="orderflow"`)
			WriteError(w, orderflow.Errorf(orderflow.EUnauthenticated, "missing or invalid bearer token"))
			return
		}
		h(w, r)
	}
}

// tokenOK compares hashes, so neither the tokens' contents nor their lengths
// show in the timing, and checks every token without stopping early.
func (p *public) tokenOK(header string) bool {
	const prefix = "Bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(header[len(prefix):]))
	ok := 0
	for _, t := range p.tokens {
		ok |= subtle.ConstantTimeCompare(got[:], t[:])
	}
	return ok == 1
}

// requireJSON enforces Content-Type: application/json (parameters allowed).
func requireJSON(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return orderflow.Errorf(orderflow.EUnsupportedMedia, "Content-Type must be application/json")
	}
	return nil
}

// readBody reads the whole body under the 64 KiB cap.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, orderflow.Errorf(orderflow.EPayloadTooLarge, "request body exceeds %d bytes", MaxBodyBytes)
	case err != nil:
		return nil, orderflow.Wrap(orderflow.EInvalid, err, "could not read the request body")
	}
	return b, nil
}

func (p *public) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz pings every dependency in name order, one after another (a handler
// starts no goroutines), each within ReadyTimeout.
func (p *public) readyz(w http.ResponseWriter, r *http.Request) {
	names := make([]string, 0, len(p.ready))
	for n := range p.ready {
		names = append(names, n)
	}
	sort.Strings(names)
	var failed []string
	var cause error
	for _, n := range names {
		ctx, cancel := context.WithTimeout(r.Context(), p.readyTO)
		err := p.ready[n].Ping(ctx)
		cancel()
		if err != nil {
			failed = append(failed, n)
			cause = errors.Join(cause, err)
		}
	}
	if len(failed) > 0 {
		WriteError(w, orderflow.Wrap(orderflow.EUnavailable, cause, "not ready: %s", strings.Join(failed, ", ")))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (p *public) createOrder(w http.ResponseWriter, r *http.Request) {
	if err := requireJSON(r); err != nil {
		WriteError(w, err)
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		WriteError(w, err)
		return
	}
	req, err := decodeNewOrder(body)
	if err != nil {
		WriteError(w, err)
		return
	}
	if err := p.svc.Admit(); err != nil {
		WriteError(w, err)
		return
	}
	o, replay, err := p.svc.Create(r.Context(), req, key)
	if err != nil {
		WriteError(w, err)
		return
	}
	w.Header().Set("Location", "/v1/orders/"+o.ID)
	status := http.StatusCreated
	if replay {
		status = http.StatusOK
	}
	writeJSON(w, status, toOrderJSON(o))
}

// idempotencyKey returns the Idempotency-Key header, "" when absent. Present
// but empty, repeated, or outside 1-128 printable ASCII is invalid_argument
// on field "Idempotency-Key".
func idempotencyKey(r *http.Request) (string, error) {
	vals, ok := r.Header["Idempotency-Key"]
	if !ok {
		return "", nil
	}
	if len(vals) != 1 || !orderflow.ValidIdempotencyKey(vals[0]) {
		return "", orderflow.Invalid("Idempotency-Key", "Idempotency-Key must be one value of 1-128 printable ASCII characters")
	}
	return vals[0], nil
}

func (p *public) getOrder(w http.ResponseWriter, r *http.Request) {
	o, err := p.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toOrderJSON(o))
}

func (p *public) orderEvents(w http.ResponseWriter, r *http.Request) {
	h, err := p.svc.History(r.Context(), r.PathValue("id"))
	if err != nil {
		WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": toEventsJSON(h)})
}

type listJSON struct {
	Orders     []*orderJSON `json:"orders"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

func (p *public) listOrders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	params := order.ListParams{UserID: q.Get("user_id"), Status: orderflow.Status(q.Get("status")), Cursor: q.Get("cursor")}
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > order.MaxListLimit {
			WriteError(w, orderflow.Invalid("limit", "limit must be an integer from 1 to 200"))
			return
		}
		params.Limit = n
	}
	page, err := p.svc.List(r.Context(), params)
	if err != nil {
		WriteError(w, err)
		return
	}
	out := listJSON{Orders: make([]*orderJSON, 0, len(page.Orders)), NextCursor: page.NextCursor}
	for _, o := range page.Orders {
		out.Orders = append(out.Orders, toOrderJSON(o))
	}
	writeJSON(w, http.StatusOK, &out)
}

// transition serves cancel and fulfill: an empty body, or {} with a JSON
// Content-Type.
func (p *public) transition(do func(context.Context, string) (*orderflow.Order, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(w, r)
		if err != nil {
			WriteError(w, err)
			return
		}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := requireJSON(r); err != nil {
				WriteError(w, err)
				return
			}
		}
		if err := decodeEmpty(body); err != nil {
			WriteError(w, err)
			return
		}
		o, err := do(r.Context(), r.PathValue("id"))
		if err != nil {
			WriteError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, toOrderJSON(o))
	}
}

// callback records a risk callback: cap, then the signature over the raw
// bytes before any parsing, then media type, strict decoding, validation,
// admission and the durable record.
func (p *public) callback(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if err := callbacksig.Verify(r.Header.Get(callbacksig.Header), body, p.secrets, p.now(), p.tolerance); err != nil {
		WriteError(w, orderflow.Wrap(orderflow.EUnauthenticated, err, "invalid or missing %s", callbacksig.Header))
		return
	}
	if err := requireJSON(r); err != nil {
		WriteError(w, err)
		return
	}
	c, err := decodeCallback(body)
	if err != nil {
		WriteError(w, err)
		return
	}
	if err := p.svc.Admit(); err != nil {
		WriteError(w, err)
		return
	}
	res, err := p.svc.RecordCallback(r.Context(), &c)
	if err != nil {
		WriteError(w, err)
		return
	}
	if res == orderflow.Duplicate {
		writeJSON(w, http.StatusOK, map[string]string{"status": "duplicate"})
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "accepted"})
}

// Sign returns an X-Orderflow-Signature value for body at time t: the
// helper the risk engine's callback client and tests use. It is
// callbacksig.Sign, repeated here for callers that already import httpapi.
func Sign(secret []byte, t time.Time, body []byte) string { return callbacksig.Sign(secret, t, body) }
