package httpapi

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// appendJSON must write what json.Marshal writes for every order, including
// strings and numbers that take encoding/json's slow paths.
func TestOrderJSONAppendMatchesMarshal(t *testing.T) {
	at := time.Date(2026, 11, 26, 11, 5, 3, 120000000, time.FixedZone("CST", 8*3600))
	base := func() *orderflow.Order {
		return &orderflow.Order{
			ID: "ord_01J", UserID: "u_123", AmountMinor: 129900, Currency: "CNY", Region: "east-china",
			Items: []orderflow.Item{{SKU: "sku-1", Qty: 2}, {SKU: "sku-2", Qty: 1}}, Status: orderflow.StatusApproved,
			Version: 2, CreatedAt: at, UpdatedAt: at.Add(time.Millisecond),
			Risk: &orderflow.Risk{Decision: orderflow.DecisionApprove, Score: 0.031, ModelVersion: "v2.1", DecidedAt: at},
		}
	}
	tests := []struct {
		name   string
		change func(o *orderflow.Order)
	}{
		{"decided", func(*orderflow.Order) {}},
		{"undecided", func(o *orderflow.Order) { o.Risk, o.Status, o.Version = nil, orderflow.StatusPendingReview, 1 }},
		{"no items", func(o *orderflow.Order) { o.Items = nil }},
		{"ip and device", func(o *orderflow.Order) { o.IP, o.DeviceID, o.Internal = "10.0.0.1", "dev-1", true }},
		{"html and quotes", func(o *orderflow.Order) { o.Items[0].SKU = `a<b>&"c"\d` }},
		{"control and unicode", func(o *orderflow.Order) { o.Region = "东部\n\t\u2028\u2029\x7f" }},
		{"invalid utf-8", func(o *orderflow.Order) { o.DeviceID = "dev\xff\xfe" }},
		{"score zero", func(o *orderflow.Order) { o.Risk.Score = 0 }},
		{"score one", func(o *orderflow.Order) { o.Risk.Score = 1 }},
		{"score tiny", func(o *orderflow.Order) { o.Risk.Score = 1e-7 }},
		{"score tiny exponent two digits", func(o *orderflow.Order) { o.Risk.Score = 1.5e-12 }},
		{"score huge", func(o *orderflow.Order) { o.Risk.Score = 3e21 }},
		{"score negative", func(o *orderflow.Order) { o.Risk.Score = -0.25 }},
		{"score long", func(o *orderflow.Order) { o.Risk.Score = 0.1 + 0.2 }},
		{"negative amounts", func(o *orderflow.Order) { o.AmountMinor, o.Items[1].Qty = -5, math.MinInt64 }},
		{"zero times", func(o *orderflow.Order) {
			o.CreatedAt, o.UpdatedAt, o.Risk.DecidedAt = time.Time{}, time.Time{}, time.Time{}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			tc.change(o)
			j := toOrderJSON(o)
			j.Items = o.Items // toOrderJSON turns nil into []; cover null too
			want, err := json.Marshal(j)
			if err != nil {
				t.Fatal(err)
			}
			got, err := j.appendJSON(nil)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("appendJSON:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// A score json.Marshal refuses is refused here too.
func TestOrderJSONAppendRefusesNonFinite(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		j := toOrderJSON(&orderflow.Order{Risk: &orderflow.Risk{Score: f}})
		if _, err := json.Marshal(j); err == nil {
			t.Fatalf("json.Marshal accepted %v", f)
		}
		if _, err := j.appendJSON(nil); err == nil {
			t.Errorf("appendJSON accepted score %v", f)
		}
	}
}

func BenchmarkOrderJSON(b *testing.B) {
	at := time.Date(2026, 11, 26, 11, 5, 3, 120000000, time.UTC)
	j := toOrderJSON(&orderflow.Order{
		ID: "ord_01J", UserID: "u_123", AmountMinor: 129900, Currency: "CNY", Region: "east-china",
		Items: []orderflow.Item{{SKU: "sku-1", Qty: 2}}, Status: orderflow.StatusApproved, Version: 2,
		CreatedAt: at, UpdatedAt: at, Risk: &orderflow.Risk{Decision: orderflow.DecisionApprove, Score: 0.031, ModelVersion: "v2.1", DecidedAt: at},
	})
	b.Run("marshal", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(j)
		}
	})
	b.Run("append", func(b *testing.B) {
		for b.Loop() {
			_, _ = j.appendJSON(make([]byte, 0, 512))
		}
	})
}

// A page of the list endpoint is written as json.Marshal writes it too.
func TestListJSONAppendMatchesMarshal(t *testing.T) {
	at := time.Date(2026, 11, 26, 11, 5, 3, 120000000, time.UTC)
	o := func(id string, decided bool) *orderJSON {
		ord := &orderflow.Order{ID: id, UserID: "u_1", AmountMinor: 5, Currency: "CNY", Region: "east",
			Items: []orderflow.Item{{SKU: "s", Qty: 1}}, Status: orderflow.StatusPendingReview, Version: 1,
			CreatedAt: at, UpdatedAt: at}
		if decided {
			ord.Status, ord.Version = orderflow.StatusRejected, 2
			ord.Risk = &orderflow.Risk{Decision: orderflow.DecisionReject, Score: 0.97, ModelVersion: "v3", DecidedAt: at}
		}
		return toOrderJSON(ord)
	}
	for name, l := range map[string]*listJSON{
		"nil":         {},
		"empty":       {Orders: []*orderJSON{}},
		"two":         {Orders: []*orderJSON{o("ord_b", true), o("ord_a", false)}},
		"with cursor": {Orders: []*orderJSON{o("ord_c", false)}, NextCursor: "eyJjIjoxfQ<&>"},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.appendJSON(nil)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("appendJSON:\n got %s\nwant %s", got, want)
			}
		})
	}
}
