package riskapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi/riskapi"
	"github.com/orderflow/orderflow/risk/engine"
)

type recorder struct {
	reviews []string
	labels  []string
	acts    []string
}

func (r *recorder) Review(_ context.Context, id string, d orderflow.Decision, who string) error {
	if id == "ord_reviewed" {
		return orderflow.Errorf(orderflow.EConflict, "already reviewed")
	}
	r.reviews = append(r.reviews, id+" "+string(d)+" "+who)
	return nil
}

func (r *recorder) SetLabel(_ context.Context, id string, fraud bool) error {
	r.labels = append(r.labels, id)
	return nil
}

func (r *recorder) Status(context.Context) (*engine.RolloutStatus, error) {
	return &engine.RolloutStatus{Stage: engine.StageFixed, Transitions: []engine.Transition{}}, nil
}

func (r *recorder) Act(_ context.Context, action, challenger, reason string) (*engine.RolloutStatus, error) {
	if action == "bogus" {
		return nil, orderflow.Invalid("action", "bad action")
	}
	r.acts = append(r.acts, action+" "+challenger+" "+reason)
	return &engine.RolloutStatus{Stage: engine.StageCanary}, nil
}

func mux(r *recorder) *http.ServeMux {
	m := http.NewServeMux()
	for p, h := range riskapi.Routes(riskapi.Config{Reviewer: r, Labels: r, Rollout: r}) {
		m.Handle(p, h)
	}
	return m
}

type errorBody struct {
	Error struct {
		Code  string  `json:"code"`
		Field *string `json:"field"`
	} `json:"error"`
}

func do(t *testing.T, h http.Handler, method, path, ctype, body string) (int, errorBody) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var e errorBody
	if w.Code >= 300 {
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
			t.Fatalf("%s %s: error body %q: %v", method, path, w.Body.String(), err)
		}
	}
	return w.Code, e
}

func TestRoutes(t *testing.T) {
	const js = "application/json"
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		code, field                     string
	}{
		{"LabelAccepted", "POST", "/v1/risk/labels", js, `{"order_id":"ord_1","fraud":true}`, 202, "", ""},
		{"LabelCharset", "POST", "/v1/risk/labels", "application/json; charset=utf-8", `{"order_id":"ord_1","fraud":false}`, 202, "", ""},
		{"ErrLabelFraudMissing", "POST", "/v1/risk/labels", js, `{"order_id":"ord_1"}`, 400, "invalid_argument", "fraud"},
		{"ErrLabelFraudType", "POST", "/v1/risk/labels", js, `{"order_id":"ord_1","fraud":"yes"}`, 400, "invalid_argument", "fraud"},
		{"ErrLabelOrderID", "POST", "/v1/risk/labels", js, `{"order_id":"ord 1","fraud":true}`, 400, "invalid_argument", "order_id"},
		{"ErrLabelUnknownField", "POST", "/v1/risk/labels", js, `{"order_id":"ord_1","fraud":true,"x":1}`, 400, "invalid_argument", "x"},
		{"ErrLabelTrailing", "POST", "/v1/risk/labels", js, `{"order_id":"ord_1","fraud":true} {}`, 400, "invalid_argument", ""},
		{"ErrLabelNotJSON", "POST", "/v1/risk/labels", js, `fraud`, 400, "invalid_argument", ""},
		{"ErrLabelMediaType", "POST", "/v1/risk/labels", "text/plain", `{}`, 415, "unsupported_media_type", ""},
		{"ErrLabelTooLarge", "POST", "/v1/risk/labels", js, `{"order_id":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "payload_too_large", ""},
		{"ReviewAccepted", "POST", "/v1/risk/reviews", js, `{"order_id":"ord_1","decision":"reject","reviewer":"alice"}`, 202, "", ""},
		{"ErrReviewDecision", "POST", "/v1/risk/reviews", js, `{"order_id":"ord_1","decision":"review","reviewer":"alice"}`, 400, "invalid_argument", "decision"},
		{"ErrReviewReviewer", "POST", "/v1/risk/reviews", js, `{"order_id":"ord_1","decision":"approve"}`, 400, "invalid_argument", "reviewer"},
		{"ErrReviewConflict", "POST", "/v1/risk/reviews", js, `{"order_id":"ord_reviewed","decision":"approve","reviewer":"a"}`, 409, "conflict", ""},
		{"RolloutStatus", "GET", "/v1/risk/rollout", "", ``, 200, "", ""},
		{"RolloutStart", "POST", "/v1/risk/rollout", js, `{"action":"start","challenger":"v3"}`, 200, "", ""},
		{"ErrRolloutAction", "POST", "/v1/risk/rollout", js, `{"action":"bogus"}`, 400, "invalid_argument", "action"},
		{"ErrRolloutNoAction", "POST", "/v1/risk/rollout", js, `{"challenger":"v3"}`, 400, "invalid_argument", "action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, e := do(t, mux(&recorder{}), tt.method, tt.path, tt.ctype, tt.body)
			if status != tt.status || e.Error.Code != tt.code {
				t.Fatalf("got %d %q, want %d %q", status, e.Error.Code, tt.status, tt.code)
			}
			if tt.code == "invalid_argument" && (e.Error.Field == nil || *e.Error.Field != tt.field) {
				t.Errorf("field %v, want %q", e.Error.Field, tt.field)
			}
		})
	}
}

type fakeDeadLetters struct{ redriven []string }

func (f *fakeDeadLetters) DeadLetters(context.Context, int) ([]orderflow.DeadLetter, error) {
	return []orderflow.DeadLetter{{ID: "7", Group: "risk", Event: orderflow.Event{ID: "evt_1", Type: orderflow.EventOrderCreated, OrderID: "ord_1"},
		Attempts: 3, LastError: "boom", At: time.Unix(0, 0)}}, nil
}

func (f *fakeDeadLetters) Redrive(_ context.Context, id string) error {
	if id != "7" {
		return orderflow.Errorf(orderflow.ENotFound, "no dead letter %s", id)
	}
	f.redriven = append(f.redriven, id)
	return nil
}

func TestAdminDeadLetters(t *testing.T) {
	dl := &fakeDeadLetters{}
	m := http.NewServeMux()
	for p, h := range riskapi.AdminRoutes(riskapi.AdminConfig{DeadLetters: dl}) {
		m.Handle(p, h)
	}
	req := httptest.NewRequest("GET", "/admin/deadletters?limit=5", nil)
	w := httptest.NewRecorder()
	m.ServeHTTP(w, req)
	var got riskapi.DeadLettersJSON
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 || len(got.DeadLetters) != 1 || got.DeadLetters[0].OrderID != "ord_1" {
		t.Fatalf("list: %d %s (%v)", w.Code, w.Body, err)
	}
	if status, _ := do(t, m, "GET", "/admin/deadletters?limit=0", "", ""); status != 400 {
		t.Errorf("limit 0: %d, want 400", status)
	}
	if status, _ := do(t, m, "POST", "/admin/deadletters/7/redrive", "", ""); status != 202 || len(dl.redriven) != 1 {
		t.Errorf("redrive: %d, redriven %v", status, dl.redriven)
	}
	if status, e := do(t, m, "POST", "/admin/deadletters/8/redrive", "", ""); status != 404 || e.Error.Code != "not_found" {
		t.Errorf("redrive unknown: %d %s", status, e.Error.Code)
	}
}

// FuzzRoutes feeds arbitrary bodies to every POST route: the answer is
// always a 2xx or a 4xx in the error shape, never a panic or a 5xx.
func FuzzRoutes(f *testing.F) {
	for _, s := range []string{
		`{"order_id":"ord_1","fraud":true}`,
		`{"order_id":"ord_1","decision":"approve","reviewer":"a"}`,
		`{"action":"advance","challenger":"v3","reason":"ok"}`,
		`{"order_id":1}`, `[]`, `null`, `{"fraud":true}{`, "\x00",
	} {
		f.Add(s)
	}
	paths := []string{"/v1/risk/labels", "/v1/risk/reviews", "/v1/risk/rollout"}
	f.Fuzz(func(t *testing.T, body string) {
		for _, p := range paths {
			req := httptest.NewRequest("POST", p, bytes.NewReader([]byte(body)))
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			mux(&recorder{}).ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Fatalf("%s %q: %d", p, body, w.Code)
			}
			if w.Code >= 300 {
				var e errorBody
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" {
					t.Fatalf("%s %q: %d with body %q", p, body, w.Code, w.Body)
				}
			}
		}
	})
}
