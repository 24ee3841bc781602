package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/orderflow/orderflow"
)

// The decoders face the network: whatever the bytes, they must not panic,
// must fail only with invalid_argument, and what they accept must be valid
// and survive a round trip through the canonical encoding.

func FuzzDecodeOrder(f *testing.F) {
	f.Add([]byte(`{"user_id":"u_1","amount_minor":129900,"currency":"CNY","region":"east-china","items":[{"sku":"sku-1","qty":2}],"internal":false,"ip":"203.0.113.7","device_id":"d-9"}`))
	f.Add([]byte(`{"user_id":"u","amount_minor":1,"currency":"CNY","region":"r","items":[{"sku":"s","qty":1}],"ip":null}`))
	f.Add([]byte(`{"items":[{"sku":"a","qty":1},{"sku":"b","qty":1.5}]}`))
	f.Add([]byte(`{"user_id":"a","user_id":"b"}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte(`[{"user_id":1}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := decodeNewOrder(body)
		if err != nil {
			if code := orderflow.ErrorCode(err); code != orderflow.EInvalid {
				t.Fatalf("decodeNewOrder(%q): code %s, want invalid_argument", body, code)
			}
			return
		}
		if err := n.Validate(); err != nil {
			t.Fatalf("accepted an invalid order %q: %v", body, err)
		}
		again, err := decodeNewOrder(mustJSON(t, n))
		if err != nil || canonical(again) != canonical(n) {
			t.Fatalf("round trip of %q: %v", body, err)
		}
	})
}

func FuzzDecodeCallback(f *testing.F) {
	f.Add([]byte(`{"event_id":"evt_1","order_id":"ord_1","event_type":"risk.decided","decision":"approve","score":0.031,"model_version":"v3","decided_at":"2026-11-26T08:00:00.123456789Z"}`))
	f.Add([]byte(`{"event_id":"e","order_id":"o","event_type":"risk.reviewed","decision":"review","score":0.5,"model_version":"v","decided_at":"2026-11-26T08:00:00+08:00"}`))
	f.Add([]byte(`{"score":1e400}`))
	f.Add([]byte(`{"decided_at":"2026-02-30T00:00:00Z"}`))
	f.Add([]byte(`{"event_id":"\u0000"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := decodeCallback(body)
		if err != nil {
			if code := orderflow.ErrorCode(err); code != orderflow.EInvalid {
				t.Fatalf("decodeCallback(%q): code %s, want invalid_argument", body, code)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted an invalid callback %q: %v", body, err)
		}
		again, err := decodeCallback(mustJSON(t, c))
		if err != nil || !again.SameVerdict(&c) || again.EventID != c.EventID || !again.DecidedAt.Equal(c.DecidedAt) {
			t.Fatalf("round trip of %q: %+v vs %+v (%v)", body, again, c, err)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// canonical is the canonical encoding orders are compared by.
func canonical(n orderflow.NewOrder) string {
	b, _ := json.Marshal(n)
	return string(b)
}
