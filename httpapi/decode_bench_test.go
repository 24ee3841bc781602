package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi/callbacksig"
)

// BenchmarkVerifyDecode is the CPU part of a callback, without HTTP or
// storage: verify the signature (two secrets configured, as during a
// rotation), then strictly decode and validate the body.
func BenchmarkVerifyDecode(b *testing.B) {
	body := []byte(`{"event_id":"evt_01JDQ0000000000000000000","order_id":"ord_01JDQ0000000000000000000","event_type":"risk.decided","decision":"approve","score":0.031,"model_version":"v3","decided_at":"2026-11-26T08:00:00.123456789Z"}`)
	now := time.Unix(1_790_000_000, 0)
	secrets := [][]byte{[]byte("old-secret"), []byte("new-secret")}
	h := callbacksig.Sign(secrets[1], now, body)
	b.ReportAllocs()
	for range b.N {
		if err := callbacksig.Verify(h, body, secrets, now, callbacksig.DefaultTolerance); err != nil {
			b.Fatal(err)
		}
		if _, err := decodeCallback(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeCallback compares the strict decoder (token walk for paths,
// types, duplicates and nulls, then Unmarshal and per-field validation in
// document order) with what encoding/json offers out of the box
// (DisallowUnknownFields plus Validate), which reports no paths and accepts
// duplicate keys, nulls and trailing data.
func BenchmarkDecodeCallback(b *testing.B) {
	body := []byte(`{"event_id":"evt_01JDQ0000000000000000000","order_id":"ord_01JDQ0000000000000000000","event_type":"risk.decided","decision":"approve","score":0.031,"model_version":"v3","decided_at":"2026-11-26T08:00:00.123456789Z"}`)
	b.Run("Strict", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := decodeCallback(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("StdlibDisallowUnknown", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var c orderflow.Callback
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c); err != nil {
				b.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
