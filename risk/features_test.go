package risk_test

import (
	"math"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/risk"
)

func TestExtract(t *testing.T) {
	base := func() orderflow.Order {
		return orderflow.Order{
			ID: "ord_1", UserID: "u", AmountMinor: 10000, Currency: "CNY", Region: "east-china",
			Items:     []orderflow.Item{{SKU: "a", Qty: 2}, {SKU: "b", Qty: 3}},
			CreatedAt: time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC), // 12:00 in east-china
		}
	}
	snap := risk.Snapshot{Orders1h: 2, Orders24h: 5, Devices24h: 2, FirstSeen: time.Date(2026, 1, 1, 4, 0, 0, 0, time.UTC),
		PriorOrders: 4, MeanLogAmount: math.Log(5000), StdLogAmount: 0.2}
	for _, tc := range []struct {
		name  string
		edit  func(*orderflow.Order, *risk.Snapshot)
		check func(t *testing.T, f risk.Features)
	}{
		{"Basics", nil, func(t *testing.T, f risk.Features) {
			if f.LogAmount != math.Log1p(100) || f.Orders1h != 2 || f.Orders24h != 5 || f.Devices24h != 2 || f.PriorOrders != 4 || f.Items != 5 {
				t.Errorf("%+v", f)
			}
			if f.AgeHours != 24 {
				t.Errorf("AgeHours = %v, want 24", f.AgeHours)
			}
		}},
		{"AmountZUsesStdFloor", nil, func(t *testing.T, f risk.Features) {
			// std 0.2 is under MinAmountStd (0.5): z = ln 2 / 0.5.
			if want := math.Log(2) / risk.MinAmountStd; math.Abs(f.AmountZ-want) > 1e-12 {
				t.Errorf("AmountZ = %v, want %v", f.AmountZ, want)
			}
		}},
		{"AmountZWithWideHistory", func(_ *orderflow.Order, s *risk.Snapshot) { s.StdLogAmount = 2 }, func(t *testing.T, f risk.Features) {
			if want := math.Log(2) / 2; math.Abs(f.AmountZ-want) > 1e-12 {
				t.Errorf("AmountZ = %v, want %v", f.AmountZ, want)
			}
		}},
		{"FirstOrderHasNoZ", func(_ *orderflow.Order, s *risk.Snapshot) { s.PriorOrders, s.MeanLogAmount = 0, 0 }, func(t *testing.T, f risk.Features) {
			if f.AmountZ != 0 {
				t.Errorf("AmountZ = %v, want 0", f.AmountZ)
			}
		}},
		{"NewUserAgeZero", func(o *orderflow.Order, s *risk.Snapshot) { s.FirstSeen = o.CreatedAt }, func(t *testing.T, f risk.Features) {
			if f.AgeHours != 0 {
				t.Errorf("AgeHours = %v, want 0", f.AgeHours)
			}
		}},
		{"NightInLocalTime", func(o *orderflow.Order, _ *risk.Snapshot) {
			o.CreatedAt = time.Date(2026, 1, 2, 19, 30, 0, 0, time.UTC) // 03:30 in east-china
		}, func(t *testing.T, f risk.Features) {
			if f.LocalHour != 3 || !f.Night {
				t.Errorf("LocalHour %d Night %v, want 3, true", f.LocalHour, f.Night)
			}
		}},
		{"NightEndsAtSix", func(o *orderflow.Order, _ *risk.Snapshot) {
			o.CreatedAt = time.Date(2026, 1, 2, 22, 0, 0, 0, time.UTC) // 06:00 in east-china
		}, func(t *testing.T, f risk.Features) {
			if f.LocalHour != 6 || f.Night {
				t.Errorf("LocalHour %d Night %v, want 6, false", f.LocalHour, f.Night)
			}
		}},
		{"InternalFlag", func(o *orderflow.Order, _ *risk.Snapshot) { o.Internal = true }, func(t *testing.T, f risk.Features) {
			if !f.Internal {
				t.Error("Internal lost")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, s := base(), snap
			if tc.edit != nil {
				tc.edit(&o, &s)
			}
			tc.check(t, risk.Extract(&o, s))
		})
	}
}

func TestLocalHour(t *testing.T) {
	at := time.Date(2026, 1, 1, 23, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		region string
		want   int
	}{
		{"east-china", 7}, {"north-china", 7}, {"far-west-china", 7}, {"us-east", 18},
		{"us-west", 15}, {"eu-west", 23}, {"eu-central", 0}, {"mars-1", 23}, {"", 23},
	} {
		if got := risk.LocalHour(tc.region, at); got != tc.want {
			t.Errorf("LocalHour(%q, 23:00Z) = %d, want %d", tc.region, got, tc.want)
		}
	}
}

func TestV21(t *testing.T) {
	quiet := risk.Features{LogAmount: math.Log1p(200), Orders1h: 1, Orders24h: 1, Devices24h: 1, PriorOrders: 10, AgeHours: 1000}
	for _, tc := range []struct {
		name string
		edit func(*risk.Features)
		want float64
		dec  orderflow.Decision
	}{
		{"Quiet", nil, 0.05, orderflow.DecisionApprove},
		{"NewAccount", func(f *risk.Features) { f.PriorOrders, f.AgeHours = 0, 0 }, 0.15, orderflow.DecisionApprove},
		{"YoungAccount", func(f *risk.Features) { f.PriorOrders, f.AgeHours = 3, 5 }, 0.15, orderflow.DecisionApprove},
		{"LargeNewAccount", func(f *risk.Features) { f.PriorOrders, f.AgeHours, f.LogAmount = 0, 0, math.Log1p(6000) }, 0.35, orderflow.DecisionApprove},
		{"LargeNewAccountAtNight", func(f *risk.Features) {
			f.PriorOrders, f.AgeHours, f.LogAmount, f.Night = 0, 0, math.Log1p(6000), true
		}, 0.50, orderflow.DecisionReview},
		{"RetryUnderTheAmountRule", func(f *risk.Features) { f.PriorOrders, f.AgeHours, f.Orders1h = 4, 0.1, 5 }, 0.45, orderflow.DecisionReview},
		{"TwoInAnHour", func(f *risk.Features) { f.Orders1h = 2 }, 0.15, orderflow.DecisionApprove},
		{"Burst", func(f *risk.Features) { f.Orders1h, f.Orders24h, f.Devices24h = 6, 12, 3 }, 0.95, orderflow.DecisionReject},
		{"UnusualAmount", func(f *risk.Features) { f.AmountZ = 3.5 }, 0.25, orderflow.DecisionApprove},
		{"UnusualAmountFewOrders", func(f *risk.Features) { f.AmountZ, f.PriorOrders = 3.5, 2 }, 0.05, orderflow.DecisionApprove},
		{"InternalClampsAtZero", func(f *risk.Features) { f.Internal = true }, 0, orderflow.DecisionApprove},
		{"Everything", func(f *risk.Features) {
			*f = risk.Features{LogAmount: 10, Orders1h: 9, Orders24h: 20, Devices24h: 5, PriorOrders: 5, AmountZ: 9, Night: true}
		}, 1, orderflow.DecisionReject},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := quiet
			if tc.edit != nil {
				tc.edit(&f)
			}
			got := risk.V21().Score(f)
			if got != tc.want {
				t.Errorf("score %v, want %v", got, tc.want)
			}
			if d := risk.V21Thresholds.Decide(got); d != tc.dec {
				t.Errorf("decision %s, want %s", d, tc.dec)
			}
		})
	}
}

func TestV3(t *testing.T) {
	m := risk.V3()
	if m.Version() != "v3" {
		t.Fatalf("version %q", m.Version())
	}
	quiet := risk.Features{LogAmount: math.Log1p(200), Orders1h: 1, Orders24h: 1, Devices24h: 1, PriorOrders: 10, AgeHours: 1000, Items: 2}
	burst := quiet
	burst.Orders1h, burst.Orders24h, burst.Devices24h = 8, 10, 4
	q, b := m.Score(quiet), m.Score(burst)
	if !(0 < q && q < b && b < 1) {
		t.Fatalf("scores quiet %v, burst %v: want 0 < quiet < burst < 1", q, b)
	}
	if d := m.Thresholds().Decide(q); d != orderflow.DecisionApprove {
		t.Errorf("a quiet habitual order is %s", d)
	}
	if d := m.Thresholds().Decide(b); d == orderflow.DecisionApprove {
		t.Errorf("a burst on four devices is approved (score %v)", b)
	}
	// More velocity never lowers the score: the velocity weights are positive.
	prev := 0.0
	for n := 1; n <= 50; n++ {
		f := quiet
		f.Orders1h, f.Orders24h = n, n
		if s := m.Score(f); s < prev {
			t.Fatalf("Orders1h %d scores %v, below %v", n, s, prev)
		} else {
			prev = s
		}
	}
}

func TestParseLogistic(t *testing.T) {
	good := `{"version":"x","features":["log_amount","log1p_orders_1h","log1p_orders_24h","log1p_devices_24h","amount_z_pos","first_order","log1p_age_hours","log1p_items","night","internal"],
	"mean":[0,0,0,0,0,0,0,0,0,0],"scale":[1,1,1,1,1,1,1,1,1,1],"weights":[1,0,0,0,0,0,0,0,0,0],"bias":-1,"thresholds":{"review":0.5,"reject":0.9}}`
	m, err := risk.ParseLogistic([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Score(risk.Features{LogAmount: 1}), 0.5; got != want {
		t.Errorf("Score = %v, want %v", got, want)
	}
	for _, bad := range []string{
		``, `{}`, `[]`,
		`{"version":"x","features":["a"],"mean":[0],"scale":[1],"weights":[1],"bias":0,"thresholds":{"review":0.5,"reject":0.9}}`,
		`{"version":"","features":[],"mean":[],"scale":[],"weights":[],"bias":0}`,
	} {
		if _, err := risk.ParseLogistic([]byte(bad)); err == nil {
			t.Errorf("ParseLogistic(%q) accepted", bad)
		}
	}
}

// FuzzParseLogistic: a model file never panics the parser, and a model it
// accepts scores inside [0, 1] with valid thresholds.
func FuzzParseLogistic(f *testing.F) {
	f.Add([]byte(`{"version":"x"}`))
	f.Add([]byte(`{"version":"x","features":["log_amount","log1p_orders_1h","log1p_orders_24h","log1p_devices_24h","amount_z_pos","first_order","log1p_age_hours","log1p_items","night","internal"],"mean":[0,0,0,0,0,0,0,0,0,0],"scale":[1,1,1,1,1,1,1,1,1,1],"weights":[1,0,0,0,0,0,0,0,0,0],"bias":-1,"thresholds":{"review":0.5,"reject":0.9}}`))
	f.Add([]byte(`{"scale":[0,0,0,0,0,0,0,0,0,0]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := risk.ParseLogistic(data)
		if err != nil {
			return
		}
		if err := m.Thresholds().Validate(); err != nil {
			t.Fatal(err)
		}
		s := m.Score(risk.Features{LogAmount: 5, Orders1h: 1, Orders24h: 1, Devices24h: 1})
		if math.IsNaN(s) || s < 0 || s > 1 {
			t.Fatalf("score %v", s)
		}
	})
}
