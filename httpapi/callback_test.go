package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/httpapi"
	"github.com/orderflow/orderflow/httpapi/callbacksig"
)

func TestCallbackSignature(t *testing.T) {
	oldSecret, newSecret := []byte("old"), []byte("new")
	s := newServer(t, serverOpts{secrets: [][]byte{oldSecret, newSecret}})
	id := s.mustCreate(t, "u_1")
	body := callbackBody(id, "risk.decided", "approve", 0.031, "v3")
	now := s.now
	tests := []struct {
		name   string
		header string
		body   []byte
		ct     string
		want   int
	}{
		{"ErrMissing", "", body, ctJSON, 401},
		{"ErrMalformed", "t=abc,v1=00", body, ctJSON, 401},
		{"ErrWrongSecret", httpapi.Sign([]byte("guess"), now, body), body, ctJSON, 401},
		{"ErrTooOld", httpapi.Sign(newSecret, now.Add(-301*time.Second), body), body, ctJSON, 401},
		{"ErrTooNew", httpapi.Sign(newSecret, now.Add(301*time.Second), body), body, ctJSON, 401},
		{"ErrTampered", httpapi.Sign(newSecret, now, body), []byte(strings.Replace(string(body), "approve", "reject", 1)), ctJSON, 401},
		// The signature is checked before anything is parsed: a bad
		// signature on garbage is 401, not 400 or 415.
		{"ErrBadSignatureBeforeParsing", "t=1,v1=00", []byte(`{{{`), "text/plain", 401},
		{"ErrSignedGarbage", httpapi.Sign(newSecret, now, []byte(`{{{`)), []byte(`{{{`), ctJSON, 400},
		{"ErrSignedTextPlain", httpapi.Sign(newSecret, now, body), body, "text/plain", 415},
		{"OKOldSecretDuringRotation", httpapi.Sign(oldSecret, now.Add(-299*time.Second), body), body, ctJSON, 202},
		{"OKSeveralV1", callbacksig.SignAll([][]byte{[]byte("retired"), newSecret}, now, body), body, ctJSON, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := []string{"Content-Type", tt.ct}
			if tt.header != "" {
				h = append(h, "X-Orderflow-Signature", tt.header)
			}
			r := s.do(t, http.MethodPost, "/v1/risk/callbacks", tt.body, h...)
			if r.status != tt.want {
				t.Fatalf("%d, want %d: %s", r.status, tt.want, r.body)
			}
			if r.status == 401 {
				if code, _ := r.errorOf(t); code != "unauthenticated" {
					t.Errorf("code %s", code)
				}
			}
		})
	}
	big := []byte(`{"event_id":"` + strings.Repeat("x", 64<<10) + `"}`)
	r := s.do(t, http.MethodPost, "/v1/risk/callbacks", big, "Content-Type", ctJSON, "X-Orderflow-Signature", httpapi.Sign(newSecret, now, big))
	if r.status != 413 {
		t.Errorf("oversized callback: %d %s", r.status, r.body)
	}
}

func TestCallbackOutcomes(t *testing.T) {
	s := newServer(t, serverOpts{})
	id := s.mustCreate(t, "u_1")

	r := s.sendCallback(t, callbackBody(id, "risk.decided", "review", 0.6, "v3"))
	if r.status != 202 || r.json(t)["status"] != "accepted" {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	// The same verdict with a new event id and time: a duplicate.
	dup := []byte(strings.Replace(string(callbackBody(id, "risk.decided", "review", 0.6, "v3")), "2026-11-26T08:00:00.123456789Z", "2026-11-26T09:00:00+08:00", 1))
	dup = []byte(strings.Replace(string(dup), `"evt_`, `"evt_retry_`, 1))
	if r := s.sendCallback(t, dup); r.status != 200 || r.json(t)["status"] != "duplicate" {
		t.Errorf("duplicate: %d %s", r.status, r.body)
	}
	for name, b := range map[string][]byte{
		"Decision": callbackBody(id, "risk.decided", "approve", 0.6, "v3"),
		"Score":    callbackBody(id, "risk.decided", "review", 0.61, "v3"),
		"Model":    callbackBody(id, "risk.decided", "review", 0.6, "v2.1"),
	} {
		if r := s.sendCallback(t, b); r.status != 409 {
			t.Errorf("conflicting %s: %d %s", name, r.status, r.body)
		}
	}
	if r := s.sendCallback(t, callbackBody("ord_unknown", "risk.decided", "approve", 0.1, "v3")); r.status != 404 {
		t.Errorf("unknown order: %d %s", r.status, r.body)
	}
	s.waitStatus(t, id, "in_review")
	if r := s.sendCallback(t, callbackBody(id, "risk.reviewed", "reject", 0.6, "human")); r.status != 202 {
		t.Fatalf("reviewed: %d %s", r.status, r.body)
	}
	o := s.waitStatus(t, id, "rejected")
	risk, _ := o["risk"].(map[string]any)
	if o["version"] != 3.0 || risk["decision"] != "reject" || risk["model_version"] != "human" || risk["decided_at"] != "2026-11-26T08:00:00.123456789Z" {
		t.Errorf("order after review: %v", o)
	}

	ev := s.do(t, http.MethodGet, "/v1/orders/"+id+"/events", nil).json(t)["events"].([]any)
	var kinds []string
	for _, e := range ev {
		e := e.(map[string]any)
		k := e["kind"].(string)
		if k == "callback" {
			k += ":" + e["event_type"].(string) + ":" + e["outcome"].(string)
		}
		if k == "transition" {
			k += ":" + e["from"].(string) + ">" + e["to"].(string)
		}
		kinds = append(kinds, k)
	}
	want := "created callback:risk.decided:applied transition:pending_review>in_review callback:risk.reviewed:applied transition:in_review>rejected"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
}

func TestCallbackValidation(t *testing.T) {
	s := newServer(t, serverOpts{})
	tests := []struct{ name, body, field string }{
		{"ErrUnknownField", `{"event_id":"e","extra":1}`, "extra"},
		{"ErrScoreType", `{"event_id":"e","score":"0.5"}`, "score"},
		{"ErrScoreRange", `{"event_id":"e","order_id":"o","event_type":"risk.decided","decision":"approve","score":1.5,"model_version":"v","decided_at":"2026-11-26T08:00:00Z"}`, "score"},
		{"ErrDecidedAt", `{"decided_at":"yesterday"}`, "decided_at"},
		{"ErrEventType", `{"event_type":"risk.guessed","event_id":""}`, "event_type"},
		{"ErrReviewWithReviewed", `{"event_id":"e","order_id":"o","event_type":"risk.reviewed","decision":"review","score":0.5,"model_version":"v","decided_at":"2026-11-26T08:00:00Z"}`, "decision"},
		{"ErrMissing", `{}`, "event_id"},
		{"ErrNull", `{"score":null}`, "score"},
		{"ErrTrailing", `{} []`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.sendCallback(t, []byte(tt.body))
			if code, field := r.errorOf(t); r.status != 400 || code != "invalid_argument" || field != tt.field {
				t.Errorf("%d %s, want field %q", r.status, r.body, tt.field)
			}
		})
	}
}

func TestBackPressure(t *testing.T) {
	s := newServer(t, serverOpts{pool: poolOfOne})
	id := s.mustCreate(t, "u_1")
	unblock := blockPool(t, s.pool)
	defer unblock()

	r := s.sendCallback(t, callbackBody(id, "risk.decided", "approve", 0.1, "v3"))
	if code, _ := r.errorOf(t); r.status != 429 || code != "resource_exhausted" || r.header.Get("Retry-After") == "" {
		t.Errorf("callback under a full pool: %d %s %v", r.status, r.body, r.header)
	}
	r = s.createOrder(t, orderBody("u_1"))
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Errorf("create under a full pool: %d %s", r.status, r.body)
	}
	// Nothing was recorded: once the pool drains the same callback is new.
	unblock()
	deadline := time.Now().Add(5 * time.Second)
	for s.svc.Admit() != nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if r := s.sendCallback(t, callbackBody(id, "risk.decided", "approve", 0.1, "v3")); r.status != 202 {
		t.Errorf("after the pool drained: %d %s", r.status, r.body)
	}
	s.waitStatus(t, id, "approved")
}

func ExampleSign() {
	body := []byte(`{"event_id":"evt_1"}`)
	h := httpapi.Sign([]byte("secret"), time.Unix(1_790_000_000, 0), body)
	fmt.Println(strings.SplitN(h, ",", 2)[0])
	// Output: t=1790000000
}
