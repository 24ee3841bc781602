package httpapi

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/orderflow/orderflow"
)

// The decoders read values from the checked bytes themselves; these are
// what they replaced (checkJSON, then encoding/json.Unmarshal), kept to hold
// them to the same answers.
func decodeNewOrderUnmarshal(body []byte) (orderflow.NewOrder, error) {
	var n orderflow.NewOrder
	keys, err := checkJSON(body, newOrderSchema)
	if err != nil {
		return n, err
	}
	if err := json.Unmarshal(body, &n); err != nil {
		return n, orderflow.Invalid("", "request body does not match the schema")
	}
	return n, validateInOrder(keys, func(key string) error { return nil }, func() error { return nil })
}

func decodeCallbackUnmarshal(body []byte) (orderflow.Callback, error) {
	var c orderflow.Callback
	if _, err := checkJSON(body, callbackSchema); err != nil {
		return c, err
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return c, orderflow.Invalid("", "request body does not match the schema")
	}
	c.DecidedAt = c.DecidedAt.UTC()
	return c, nil
}

var decodeSeeds = [][]byte{
	[]byte(`{"user_id":"u_1","amount_minor":129900,"currency":"CNY","region":"east-china","items":[{"sku":"sku-1","qty":2}],"internal":false,"ip":"203.0.113.7","device_id":"d-9"}`),
	[]byte(`{"user_id":"u","amount_minor":1,"currency":"CNY","region":"r","items":[{"sku":"s","qty":1}],"ip":null,"internal":null,"device_id":null}`),
	[]byte(` { "items" : [ { "qty" : -0 , "sku" : "\u00e9\ud83d\ude00" } , {"sku":"b\"\\","qty":10000} ] , "internal" : true } `),
	[]byte(`{"items":[]}`),
	[]byte(`{"items":[{}]}`),
	[]byte(`{"user_id":"a\xff\xfeb","region":"\u2028"}`),
	[]byte(`{"amount_minor":9223372036854775807}`),
	[]byte(`{"event_id":"evt_1","order_id":"ord_1","event_type":"risk.decided","decision":"approve","score":0.031,"model_version":"v3","decided_at":"2026-11-26T08:00:00.123456789Z"}`),
	[]byte(`{"event_id":"e","decision":"review","score":-0.0,"decided_at":"2026-11-26T08:00:00+08:00"}`),
	[]byte(`{"score":1E-7,"decided_at":"2026-11-26T08:00:00\u002e5Z"}`),
	[]byte(`{"decided_at":"2026-11-26T08:00:00Z","event_type":"risk.\u0072eviewed"}`),
}

// FuzzDecodeMatchesUnmarshal: whatever the bytes, the decoders accept what
// checkJSON + encoding/json.Unmarshal accepted, with the same values.
func FuzzDecodeMatchesUnmarshal(f *testing.F) {
	for _, b := range decodeSeeds {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if want, wantErr := decodeNewOrderUnmarshal(body); wantErr == nil {
			keys, vals, err := scanJSON(body, newOrderSchema)
			if err != nil || len(keys) != len(vals) {
				t.Fatalf("scanJSON(%q): %v", body, err)
			}
			got, err := decodeNewOrder(body)
			if err != nil && orderflow.ErrorCode(err) != orderflow.EInvalid {
				t.Fatalf("decodeNewOrder(%q): %v", body, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decodeNewOrder(%q) = %+v, Unmarshal %+v", body, got, want)
			}
		} else if _, err := decodeNewOrder(body); err == nil || err.Error() != wantErr.Error() {
			t.Fatalf("decodeNewOrder(%q): %v, want %v", body, err, wantErr)
		}
		want, wantErr := decodeCallbackUnmarshal(body)
		got, err := decodeCallback(body)
		if wantErr != nil {
			if err == nil || err.Error() != wantErr.Error() {
				t.Fatalf("decodeCallback(%q): %v, want %v", body, err, wantErr)
			}
			return
		}
		if err != nil && orderflow.ErrorCode(err) != orderflow.EInvalid {
			t.Fatalf("decodeCallback(%q): %v", body, err)
		}
		if got.EventID != want.EventID || got.OrderID != want.OrderID || got.EventType != want.EventType ||
			got.Decision != want.Decision || got.Score != want.Score || got.ModelVersion != want.ModelVersion ||
			!got.DecidedAt.Equal(want.DecidedAt) || got.DecidedAt.Location() != want.DecidedAt.Location() {
			t.Fatalf("decodeCallback(%q) = %+v, Unmarshal %+v", body, got, want)
		}
	})
}
