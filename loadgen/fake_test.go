package loadgen_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeAPI fakes the order API of API.md closely enough for a client: it
// creates orders (honouring Idempotency-Key and the bearer token), decides
// each one on its second GET by a rule on the amount, and records labels.
// A client is what is under test here; the real service has its own test.
type fakeAPI struct {
	*httptest.Server
	token string
	// throttleFirst answers the first POST of every Idempotency-Key with
	// 429 and Retry-After: 1.
	throttleFirst bool
	// unknownOutcome creates the order on the first POST of a key but
	// answers 504 (the answer was lost), then 409 to the second (as if
	// the first were still in flight), and replays it from the third on.
	unknownOutcome bool
	// approveFromNth, when set, replaces the amount rule: a user's orders
	// are rejected until their nth, which and later ones are approved.
	approveFromNth int
	// noList answers GET /v1/orders with 404, as a server without the
	// list endpoint would.
	noList bool

	mu       sync.Mutex
	orders   map[string]*fakeOrder
	keys     map[string]string // idempotency key -> order id
	attempts map[string][]time.Time
	labels   map[string]bool
	perUser  map[string]int
	posts    int
	lists    int
}

type fakeOrder struct {
	orderflow.Order
	gets int
	nth  int // the user's nth order
}

// fakeScore is the fake's model: the larger the amount, the riskier.
func fakeScore(amountMinor int64) float64 {
	return float64(amountMinor) / float64(amountMinor+100_000)
}

func newFakeAPI(t *testing.T, configure func(*fakeAPI)) *fakeAPI {
	t.Helper()
	f := &fakeAPI{orders: map[string]*fakeOrder{}, keys: map[string]string{},
		attempts: map[string][]time.Time{}, labels: map[string]bool{}, perUser: map[string]int{}}
	if configure != nil {
		configure(f)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/orders", f.create)
	mux.HandleFunc("GET /v1/orders/{id}", f.get)
	mux.HandleFunc("GET /v1/orders", f.list)
	mux.HandleFunc("POST /v1/risk/labels", f.label)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func writeError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%q,"message":"fake"}}`, code)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAPI) create(w http.ResponseWriter, r *http.Request) {
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		writeError(w, 401, orderflow.EUnauthenticated)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeError(w, 415, orderflow.EUnsupportedMedia)
		return
	}
	var req orderflow.NewOrder
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Validate() != nil {
		writeError(w, 400, orderflow.EInvalid)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.posts++
	f.attempts[key] = append(f.attempts[key], time.Now())
	if f.throttleFirst && len(f.attempts[key]) == 1 {
		w.Header().Set("Retry-After", "1")
		writeError(w, 429, orderflow.EResourceExhausted)
		return
	}
	if f.unknownOutcome && len(f.attempts[key]) == 2 {
		writeError(w, 409, orderflow.EConflict)
		return
	}
	if id, ok := f.keys[key]; ok && key != "" {
		writeJSON(w, 200, f.orders[id].Order)
		return
	}
	now := time.Now().UTC()
	o := &fakeOrder{Order: orderflow.Order{
		ID: fmt.Sprintf("ord_%d", len(f.orders)+1), UserID: req.UserID, AmountMinor: req.AmountMinor,
		Currency: req.Currency, Region: req.Region, Items: req.Items, Internal: req.Internal,
		IP: req.IP, DeviceID: req.DeviceID, Status: orderflow.StatusPendingReview, Version: 1,
		CreatedAt: now, UpdatedAt: now,
	}}
	f.perUser[req.UserID]++
	o.nth = f.perUser[req.UserID]
	f.orders[o.ID] = o
	f.keys[key] = o.ID
	if f.unknownOutcome {
		writeError(w, 504, orderflow.EDeadlineExceeded)
		return
	}
	writeJSON(w, 201, o.Order)
}

func (f *fakeAPI) get(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.orders[r.PathValue("id")]
	if !ok {
		writeError(w, 404, orderflow.ENotFound)
		return
	}
	f.seen(o)
	writeJSON(w, 200, o.Order)
}

// list is GET /v1/orders without filters: newest first, limit and an
// opaque cursor (the offset). Every order on the page counts as a GET.
func (f *fakeAPI) list(w http.ResponseWriter, r *http.Request) {
	if f.noList {
		f.mu.Lock()
		f.lists++
		f.mu.Unlock()
		writeError(w, 404, orderflow.ENotFound)
		return
	}
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit < 1 || limit > 200 {
		writeError(w, 400, orderflow.EInvalid)
		return
	}
	from := 0
	if c := r.URL.Query().Get("cursor"); c != "" {
		if from, err = strconv.Atoi(c); err != nil {
			writeError(w, 400, orderflow.EInvalid)
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	all := make([]*fakeOrder, 0, len(f.orders))
	for _, o := range f.orders {
		all = append(all, o)
	}
	num := func(o *fakeOrder) int { n, _ := strconv.Atoi(strings.TrimPrefix(o.ID, "ord_")); return n }
	sort.Slice(all, func(i, j int) bool { return num(all[i]) > num(all[j]) })
	page := struct {
		Orders     []orderflow.Order `json:"orders"`
		NextCursor string            `json:"next_cursor,omitempty"`
	}{Orders: []orderflow.Order{}}
	for i := from; i < len(all) && len(page.Orders) < limit; i++ {
		f.seen(all[i])
		page.Orders = append(page.Orders, all[i].Order)
		if len(page.Orders) == limit && i+1 < len(all) {
			page.NextCursor = strconv.Itoa(i + 1)
		}
	}
	f.lists++
	writeJSON(w, 200, page)
}

// seen counts a look at o and decides it on the second. f.mu is held.
func (f *fakeAPI) seen(o *fakeOrder) {
	o.gets++
	if o.gets == 2 && o.Status == orderflow.StatusPendingReview {
		score := fakeScore(o.AmountMinor)
		d, st := orderflow.DecisionApprove, orderflow.StatusApproved
		switch {
		case f.approveFromNth > 0 && o.nth >= f.approveFromNth:
		case f.approveFromNth > 0:
			d, st = orderflow.DecisionReject, orderflow.StatusRejected
		case score >= 0.8:
			d, st = orderflow.DecisionReject, orderflow.StatusRejected
		case score >= 0.5:
			d, st = orderflow.DecisionReview, orderflow.StatusInReview
		}
		now := time.Now().UTC()
		o.Status, o.Version, o.UpdatedAt = st, 2, now
		o.Risk = &orderflow.Risk{Decision: d, Score: score, ModelVersion: "fake-v1", DecidedAt: now}
	}
}

func (f *fakeAPI) label(w http.ResponseWriter, r *http.Request) {
	var l struct {
		OrderID string `json:"order_id"`
		Fraud   *bool  `json:"fraud"`
	}
	if err := json.NewDecoder(r.Body).Decode(&l); err != nil || l.Fraud == nil {
		writeError(w, 400, orderflow.EInvalid)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.orders[l.OrderID]; !ok {
		writeError(w, 404, orderflow.ENotFound)
		return
	}
	f.labels[l.OrderID] = *l.Fraud
	writeJSON(w, 202, map[string]string{"status": "accepted"})
}

// snapshot returns counts under the lock.
func (f *fakeAPI) snapshot() (orders, labels, posts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.orders), len(f.labels), f.posts
}
