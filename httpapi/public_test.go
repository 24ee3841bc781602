package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/orderflow/orderflow"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var timeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`)

func TestCreateGetEvents(t *testing.T) {
	s := newServer(t, serverOpts{})
	r := s.createOrder(t, orderBody("u_123"))
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	o := r.json(t)
	id, _ := o["id"].(string)
	if !strings.HasPrefix(id, "ord_") || o["status"] != "pending_review" || o["version"] != 1.0 || o["risk"] != nil {
		t.Errorf("created order = %v", o)
	}
	if _, ok := o["risk"]; !ok {
		t.Error("risk must be present (null) before a decision")
	}
	for _, k := range []string{"created_at", "updated_at"} {
		if v, _ := o[k].(string); !timeRE.MatchString(v) {
			t.Errorf("%s = %q, want RFC 3339 UTC with 9 fractional digits", k, v)
		}
	}
	if r.header.Get("Location") != "/v1/orders/"+id || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Errorf("headers = %v", r.header)
	}

	g := s.do(t, http.MethodGet, "/v1/orders/"+id, nil)
	if g.status != http.StatusOK || g.json(t)["id"] != id {
		t.Errorf("get: %d %s", g.status, g.body)
	}
	for _, path := range []string{"/v1/orders/ord_00000000000000000000000000", "/v1/orders/%20x", "/v1/orders/ord_x/events"} {
		r := s.do(t, http.MethodGet, path, nil)
		if code, field := r.errorOf(t); r.status != http.StatusNotFound || code != "not_found" || field != "<absent>" {
			t.Errorf("GET %s: %d %s", path, r.status, r.body)
		}
	}

	ev := s.do(t, http.MethodGet, "/v1/orders/"+id+"/events", nil)
	events, _ := ev.json(t)["events"].([]any)
	if ev.status != http.StatusOK || len(events) != 1 || events[0].(map[string]any)["kind"] != "created" {
		t.Errorf("events: %d %s", ev.status, ev.body)
	}
}

func TestCreateIdempotencyKey(t *testing.T) {
	s := newServer(t, serverOpts{})
	first := s.createOrder(t, orderBody("u_1"), "Idempotency-Key", "k-1")
	if first.status != http.StatusCreated {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	// Same request, other layout and key order: a replay.
	same := `{"items":[{"qty":2,"sku":"sku-1"}],"region":"east-china","currency":"CNY","amount_minor":129900,
		"user_id":"u_1","device_id":"d-9","ip":"203.0.113.7"}`
	again := s.createOrder(t, same, "Idempotency-Key", "k-1")
	if again.status != http.StatusOK || again.json(t)["id"] != first.json(t)["id"] {
		t.Errorf("replay: %d %s", again.status, again.body)
	}
	if string(again.body) != string(first.body) {
		t.Errorf("replay body differs:\n%s\n%s", again.body, first.body)
	}
	other := s.createOrder(t, orderBody("u_2"), "Idempotency-Key", "k-1")
	if code, _ := other.errorOf(t); other.status != http.StatusConflict || code != "conflict" {
		t.Errorf("other request, same key: %d %s", other.status, other.body)
	}
	for name, key := range map[string]string{"Empty": "", "TooLong": strings.Repeat("k", 129), "NonASCII": "ключ"} {
		t.Run("Err"+name, func(t *testing.T) {
			r := s.createOrder(t, orderBody("u_1"), "Idempotency-Key", key)
			if code, field := r.errorOf(t); r.status != 400 || code != "invalid_argument" || field != "Idempotency-Key" {
				t.Errorf("%d %s", r.status, r.body)
			}
		})
	}
}

func TestCreateErrors(t *testing.T) {
	s := newServer(t, serverOpts{})
	valid := orderBody("u_1")
	tests := []struct {
		name       string
		ct         string
		body       string
		wantStatus int
		wantCode   string
		wantField  string
	}{
		{"OKCharset", "application/json; charset=utf-8", valid, 201, "", ""},
		{"OKNullOptionals", ctJSON, `{"user_id":"u","amount_minor":1,"currency":"CNY","region":"r","items":[{"sku":"s","qty":1}],"internal":null,"ip":null,"device_id":null}`, 201, "", ""},
		{"ErrNoContentType", "", valid, 415, "unsupported_media_type", "<absent>"},
		{"ErrTextPlain", "text/plain", valid, 415, "unsupported_media_type", "<absent>"},
		{"ErrTooLarge", ctJSON, `{"user_id":"` + strings.Repeat("x", 64<<10) + `"}`, 413, "payload_too_large", "<absent>"},
		{"ErrSyntax", ctJSON, `{"user_id": "u_1",`, 400, "invalid_argument", ""},
		{"ErrEmpty", ctJSON, ``, 400, "invalid_argument", ""},
		{"ErrNotObject", ctJSON, `[1,2]`, 400, "invalid_argument", ""},
		{"ErrTrailingData", ctJSON, valid + ` {}`, 400, "invalid_argument", ""},
		{"ErrTrailingGarbage", ctJSON, valid + `x`, 400, "invalid_argument", ""},
		{"ErrUnknownTopLevel", ctJSON, `{"user_id":"u_1","colour":"red"}`, 400, "invalid_argument", "colour"},
		{"ErrUnknownNested", ctJSON, `{"user_id":"u_1","items":[{"sku":"a","qty":1},{"sku":"b","qty":1,"colour":"red"}]}`, 400, "invalid_argument", "items[1].colour"},
		{"ErrUnknownBeforeBadValue", ctJSON, `{"user_id":"","colour":"red"}`, 400, "invalid_argument", "colour"},
		{"ErrWrongTypeString", ctJSON, `{"user_id":"u_1","amount_minor":"100"}`, 400, "invalid_argument", "amount_minor"},
		{"ErrWrongTypeFloatQty", ctJSON, `{"items":[{"sku":"a","qty":1.5}]}`, 400, "invalid_argument", "items[0].qty"},
		{"ErrWrongTypeExponent", ctJSON, `{"amount_minor":1e3}`, 400, "invalid_argument", "amount_minor"},
		{"ErrOverflow", ctJSON, `{"amount_minor":99999999999999999999}`, 400, "invalid_argument", "amount_minor"},
		{"ErrWrongTypeItems", ctJSON, `{"items":{"sku":"a"}}`, 400, "invalid_argument", "items"},
		{"ErrWrongTypeItem", ctJSON, `{"items":["a"]}`, 400, "invalid_argument", "items[0]"},
		{"ErrWrongTypeBool", ctJSON, `{"internal":"no"}`, 400, "invalid_argument", "internal"},
		{"ErrNullRequired", ctJSON, `{"user_id":null}`, 400, "invalid_argument", "user_id"},
		{"ErrDuplicateKey", ctJSON, `{"user_id":"a","user_id":"b"}`, 400, "invalid_argument", "user_id"},
		{"ErrValueDocumentOrder", ctJSON, `{"region":"East China","currency":"cny","user_id":"u_1"}`, 400, "invalid_argument", "region"},
		{"ErrItemValue", ctJSON, `{"user_id":"u","amount_minor":1,"currency":"CNY","region":"r","items":[{"sku":"s","qty":1},{"sku":"s","qty":0}]}`, 400, "invalid_argument", "items[1].qty"},
		{"ErrMissingFirstRequired", ctJSON, `{"amount_minor":1}`, 400, "invalid_argument", "user_id"},
		{"ErrAmount", ctJSON, `{"user_id":"u","amount_minor":0,"currency":"CNY","region":"r","items":[{"sku":"s","qty":1}]}`, 400, "invalid_argument", "amount_minor"},
		{"ErrIP", ctJSON, `{"user_id":"u","amount_minor":1,"currency":"CNY","region":"r","items":[{"sku":"s","qty":1}],"ip":"300.1.1.1"}`, 400, "invalid_argument", "ip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h []string
			if tt.ct != "" {
				h = []string{"Content-Type", tt.ct}
			}
			r := s.do(t, http.MethodPost, "/v1/orders", []byte(tt.body), h...)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if tt.wantCode == "" {
				return
			}
			if code, field := r.errorOf(t); code != tt.wantCode || field != tt.wantField {
				t.Errorf("code %q field %q, want %q %q (%s)", code, field, tt.wantCode, tt.wantField, r.body)
			}
		})
	}
}

func TestList(t *testing.T) {
	s := newServer(t, serverOpts{})
	for i := 0; i < 5; i++ {
		s.mustCreate(t, "u_1")
		s.mustCreate(t, "u_2")
	}
	var seen []string
	path := "/v1/orders?user_id=u_1&limit=2"
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		r := s.do(t, http.MethodGet, path, nil)
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		m := r.json(t)
		for _, o := range m["orders"].([]any) {
			o := o.(map[string]any)
			if o["user_id"] != "u_1" {
				t.Errorf("filter leaked %v", o["user_id"])
			}
			seen = append(seen, o["id"].(string))
		}
		next, ok := m["next_cursor"].(string)
		if !ok {
			break
		}
		path = "/v1/orders?user_id=u_1&limit=2&cursor=" + next
	}
	if len(seen) != 5 {
		t.Fatalf("saw %d orders, want 5", len(seen))
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] >= seen[i-1] {
			t.Errorf("not newest first: %v", seen)
		}
	}
	r := s.do(t, http.MethodGet, "/v1/orders?user_id=u_1&limit=2", nil)
	cursor := r.json(t)["next_cursor"].(string)

	empty := s.do(t, http.MethodGet, "/v1/orders?user_id=nobody", nil)
	if empty.status != 200 || string(empty.body) != "{\"orders\":[]}\n" {
		t.Errorf("empty page: %d %q", empty.status, empty.body)
	}
	for name, tt := range map[string]struct{ query, field string }{
		"ErrLimitZero":       {"limit=0", "limit"},
		"ErrLimitTooBig":     {"limit=201", "limit"},
		"ErrLimitNotNumber":  {"limit=ten", "limit"},
		"ErrStatus":          {"status=lost", "status"},
		"ErrCursorGarbage":   {"cursor=%25%25", "cursor"},
		"ErrCursorOtherUser": {"user_id=u_2&cursor=" + cursor, "cursor"},
		"ErrCursorNoFilter":  {"cursor=" + cursor, "cursor"},
		"ErrCursorStatus":    {"user_id=u_1&status=approved&cursor=" + cursor, "cursor"},
	} {
		t.Run(name, func(t *testing.T) {
			r := s.do(t, http.MethodGet, "/v1/orders?"+tt.query, nil)
			if code, field := r.errorOf(t); r.status != 400 || code != "invalid_argument" || field != tt.field {
				t.Errorf("%d %s", r.status, r.body)
			}
		})
	}
}

func TestCancelFulfill(t *testing.T) {
	s := newServer(t, serverOpts{})
	id := s.mustCreate(t, "u_1")
	tests := []struct {
		name, path, ct, body string
		wantStatus           int
		wantField            string
	}{
		{"ErrFulfillPending", "/fulfill", "", "", 409, "<absent>"},
		{"ErrUnknownField", "/cancel", ctJSON, `{"reason":"x"}`, 400, "reason"},
		{"ErrNotEmptyObject", "/cancel", ctJSON, `[]`, 400, ""},
		{"ErrBodyWithoutContentType", "/cancel", "", `{}`, 415, "<absent>"},
		{"OKCancelEmptyObject", "/cancel", ctJSON, `{}`, 200, ""},
		{"OKCancelAgainEmptyBody", "/cancel", "", "", 200, ""},
		{"ErrFulfillCancelled", "/fulfill", ctJSON, `{}`, 409, "<absent>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h []string
			if tt.ct != "" {
				h = []string{"Content-Type", tt.ct}
			}
			r := s.do(t, http.MethodPost, "/v1/orders/"+id+tt.path, []byte(tt.body), h...)
			if r.status != tt.wantStatus {
				t.Fatalf("%d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if r.status == 200 {
				if o := r.json(t); o["status"] != "cancelled" || o["version"] != 2.0 {
					t.Errorf("order after cancel: %v", o)
				}
				return
			}
			if _, field := r.errorOf(t); field != tt.wantField {
				t.Errorf("field %q, want %q", field, tt.wantField)
			}
		})
	}
	if r := s.do(t, http.MethodPost, "/v1/orders/ord_nope/cancel", nil); r.status != 404 {
		t.Errorf("cancel unknown: %d", r.status)
	}
	r := s.do(t, http.MethodPost, "/v1/orders/"+id+"/fulfill", nil)
	if !strings.Contains(string(r.body), "cancelled") {
		t.Errorf("409 message should say from which status: %s", r.body)
	}
}

func TestBearerTokens(t *testing.T) {
	s := newServer(t, serverOpts{tokens: []string{"tok-old", "tok-new"}})
	tests := []struct {
		name, auth string
		want       int
	}{
		{"ErrMissing", "", 401},
		{"ErrWrong", "Bearer tok-other", 401},
		{"ErrPrefixOnly", "Bearer ", 401},
		{"ErrBasic", "Basic dG9rLW9sZA==", 401},
		{"ErrTokenPrefix", "Bearer tok-ol", 401},
		{"OKOld", "Bearer tok-old", 201},
		{"OKNewLowercaseScheme", "bearer tok-new", 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := []string{"Content-Type", ctJSON}
			if tt.auth != "" {
				h = append(h, "Authorization", tt.auth)
			}
			r := s.do(t, http.MethodPost, "/v1/orders", []byte(orderBody("u_1")), h...)
			if r.status != tt.want {
				t.Fatalf("%d, want %d: %s", r.status, tt.want, r.body)
			}
			if r.status == 401 {
				if code, _ := r.errorOf(t); code != "unauthenticated" || r.header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 body %s headers %v", r.body, r.header)
				}
			}
		})
	}
	for _, path := range []string{"/v1/orders", "/v1/orders/x", "/v1/orders/x/events"} {
		if r := s.do(t, http.MethodGet, path, nil); r.status != 401 {
			t.Errorf("GET %s without token: %d", path, r.status)
		}
	}
	for _, path := range []string{"/v1/orders/x/cancel", "/v1/orders/x/fulfill"} {
		if r := s.do(t, http.MethodPost, path, nil); r.status != 401 {
			t.Errorf("POST %s without token: %d", path, r.status)
		}
	}
	if r := s.do(t, http.MethodGet, "/healthz", nil); r.status != 200 {
		t.Errorf("healthz needs no token: %d", r.status)
	}
}

type pinger func(context.Context) error

func (p pinger) Ping(ctx context.Context) error { return p(ctx) }

func TestHealthReady(t *testing.T) {
	down := pinger(func(context.Context) error { return errors.New("connection refused") })
	up := pinger(func(context.Context) error { return nil })
	s := newServer(t, serverOpts{ready: map[string]orderflow.Pinger{"store": up, "bus": down, "lock": down}})
	if r := s.do(t, http.MethodGet, "/healthz", nil); r.status != 200 || r.json(t)["status"] != "ok" {
		t.Errorf("healthz: %d %s", r.status, r.body)
	}
	r := s.do(t, http.MethodGet, "/readyz", nil)
	code, _ := r.errorOf(t)
	if r.status != 503 || code != "unavailable" || r.header.Get("Retry-After") != "1" {
		t.Errorf("readyz: %d %s %v", r.status, r.body, r.header)
	}
	if msg := string(r.body); !strings.Contains(msg, "bus, lock") || strings.Contains(msg, "store") || strings.Contains(msg, "refused") {
		t.Errorf("readyz message should name the failed dependencies only, not their errors: %s", msg)
	}
	ok := newServer(t, serverOpts{})
	if r := ok.do(t, http.MethodGet, "/readyz", nil); r.status != 200 {
		t.Errorf("readyz with a live store: %d %s", r.status, r.body)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	s := newServer(t, serverOpts{})
	for _, tt := range []struct{ method, path string }{
		{"GET", "/nope"}, {"DELETE", "/v1/orders/x"}, {"PUT", "/v1/orders"}, {"GET", "/v1/risk/callbacks"}, {"GET", "/metrics"}, {"GET", "/debug/pprof/"},
	} {
		r := s.do(t, tt.method, tt.path, nil)
		if code, _ := r.errorOf(t); r.status != 404 || code != "not_found" {
			t.Errorf("%s %s: %d %s", tt.method, tt.path, r.status, r.body)
		}
	}
}

func TestMetricsCountEachErrorOnce(t *testing.T) {
	s := newServer(t, serverOpts{})
	before := testutil.ToFloat64(s.metrics.Errors.WithLabelValues("not_found"))
	for i := 0; i < 3; i++ {
		s.do(t, http.MethodGet, "/v1/orders/ord_missing", nil)
	}
	s.do(t, http.MethodPost, "/v1/orders", []byte(`{}`)) // 415
	s.mustCreate(t, "u_1")
	if got := testutil.ToFloat64(s.metrics.Errors.WithLabelValues("not_found")) - before; got != 3 {
		t.Errorf("not_found counted %v times, want 3", got)
	}
	if got := testutil.ToFloat64(s.metrics.Errors.WithLabelValues("unsupported_media_type")); got != 1 {
		t.Errorf("unsupported_media_type counted %v, want 1", got)
	}
	if got := testutil.CollectAndCount(s.metrics.HTTPRequestDuration); got != 3 {
		t.Errorf("duration series = %d, want 3 (GET 4xx, POST 4xx, POST 2xx)", got)
	}
	problems, err := testutil.GatherAndLint(s.metrics.Registry)
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestFulfillApproved(t *testing.T) {
	s := newServer(t, serverOpts{})
	id := s.mustCreate(t, "u_1")
	if r := s.sendCallback(t, callbackBody(id, "risk.decided", "approve", 0.01, "v3")); r.status != 202 {
		t.Fatalf("callback: %d %s", r.status, r.body)
	}
	s.waitStatus(t, id, "approved")
	for i, want := range []int{200, 200} {
		r := s.do(t, http.MethodPost, "/v1/orders/"+id+"/fulfill", nil)
		if o := r.json(t); r.status != want || o["status"] != "fulfilled" || o["version"] != 3.0 {
			t.Errorf("fulfill #%d: %d %s", i+1, r.status, r.body)
		}
	}
	r := s.do(t, http.MethodPost, "/v1/orders/"+id+"/cancel", nil)
	if code, _ := r.errorOf(t); r.status != 409 || code != "conflict" || !strings.Contains(string(r.body), "fulfilled") {
		t.Errorf("cancel fulfilled: %d %s", r.status, r.body)
	}
}

func TestBodyCapBoundary(t *testing.T) {
	s := newServer(t, serverOpts{})
	// A valid order padded with whitespace to exactly 64 KiB is accepted;
	// one byte more is 413.
	body := orderBody("u_1")
	exact := body + strings.Repeat(" ", 64<<10-len(body))
	if r := s.createOrder(t, exact); r.status != http.StatusCreated {
		t.Errorf("exactly 64 KiB: %d %s", r.status, r.body)
	}
	if r := s.createOrder(t, exact+" "); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("64 KiB + 1: %d %s", r.status, r.body)
	}
}
