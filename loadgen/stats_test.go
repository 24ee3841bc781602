package loadgen

import (
	"math"
	"net/http"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{"Empty", nil, 0.5, 0},
		{"One", []time.Duration{3 * time.Millisecond}, 0.99, 3 * time.Millisecond},
		{"SmallExact", []time.Duration{10 * time.Microsecond, 20 * time.Microsecond, 30 * time.Microsecond}, 0.5, 20 * time.Microsecond},
		{"Negative", []time.Duration{-time.Second}, 0.5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h histogram
			for _, v := range tc.values {
				h.record(v)
			}
			if got := h.quantile(tc.q); got != tc.want {
				t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

// TestHistogramRelativeError checks the promise of the layout: every
// quantile of a wide spread of values is within 1 % of the exact one.
func TestHistogramRelativeError(t *testing.T) {
	var h histogram
	const n = 100_000
	for i := 1; i <= n; i++ {
		h.record(time.Duration(i) * 37 * time.Microsecond) // 37 µs … 3.7 s
	}
	for _, q := range []float64{0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1} {
		exact := time.Duration(math.Ceil(q*n)) * 37 * time.Microsecond
		got := h.quantile(q)
		if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 0.01 {
			t.Errorf("q%.3f = %v, exact %v: relative error %.4f > 1 %%", q, got, exact, rel)
		}
	}
	if h.max != n*37*time.Microsecond {
		t.Errorf("max %v", h.max)
	}
}

func TestHistIndexRoundTrip(t *testing.T) {
	// Every bucket's middle falls back into the same bucket, and buckets
	// grow with the value.
	prev := -1
	for i := 0; i < histBuckets-1; i++ {
		v := histValue(i)
		if got := histIndex(v); got != i {
			t.Fatalf("histIndex(histValue(%d) = %v) = %d", i, v, got)
		}
		if i <= prev {
			t.Fatalf("bucket %d after %d", i, prev)
		}
		prev = i
	}
	if got := histIndex(time.Duration(math.MaxInt64)); got != histBuckets-1 {
		t.Errorf("the largest duration lands in bucket %d, want the last, %d", got, histBuckets-1)
	}
}

func TestModelStats(t *testing.T) {
	type obs struct {
		score           float64
		approved, fraud bool
	}
	ptr := func(f float64) *float64 { return &f }
	for _, tc := range []struct {
		name     string
		obs      []obs
		auc, acc *float64
	}{
		{"Empty", nil, nil, nil},
		{"OnlyLegit", []obs{{0.1, true, false}, {0.2, true, false}}, nil, ptr(1)},
		{"Perfect", []obs{{0.1, true, false}, {0.2, true, false}, {0.9, false, true}}, ptr(1), ptr(1)},
		{"Reversed", []obs{{0.9, false, false}, {0.1, true, true}}, ptr(0), ptr(0)},
		{"AllTied", []obs{{0.5, true, false}, {0.5, true, true}}, ptr(0.5), ptr(0.5)},
		{"Mixed", []obs{{0.1, true, false}, {0.3, true, true}, {0.2, true, false}, {0.8, false, false}}, ptr(2.0 / 3), ptr(0.5)},
		{"ReviewOfFraudIsRight", []obs{{0.6, false, true}}, nil, ptr(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newModelStats()
			for _, o := range tc.obs {
				m.add(o.score, o.approved, o.fraud)
			}
			check := func(what string, got, want *float64) {
				switch {
				case got == nil && want == nil:
				case got == nil || want == nil:
					t.Errorf("%s = %v, want %v", what, got, want)
				case math.Abs(*got-*want) > 1e-9:
					t.Errorf("%s = %v, want %v", what, *got, *want)
				}
			}
			check("auc", m.auc(), tc.auc)
			check("accuracy", m.accuracy(), tc.acc)
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", defaultRetryAfter},
		{"0", 0},
		{"3", 3 * time.Second},
		{"-1", defaultRetryAfter},
		{"soon", defaultRetryAfter},
		{"3600", maxRetryAfter},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second},
		{now.Add(-5 * time.Second).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.v, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestErrorCode(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{
		{429, `{"error":{"code":"resource_exhausted","message":"slow down"}}`, "resource_exhausted"},
		{400, `{"error":{"code":"invalid_argument","message":"x","field":"amount_minor"}}`, "invalid_argument"},
		{502, `<html>bad gateway</html>`, "http_502"},
		{500, `{"error":{}}`, "http_500"},
		{404, ``, "http_404"},
	} {
		if got := errorCode(tc.status, []byte(tc.body)); got != tc.want {
			t.Errorf("errorCode(%d, %q) = %q, want %q", tc.status, tc.body, got, tc.want)
		}
	}
}

// The two decoders of what a server sends: neither may panic, and what
// they return stays in range whatever the bytes.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "1", "120", "-3", "Wed, 21 Oct 2015 07:28:00 GMT", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, v string) {
		if d := parseRetryAfter(v, now); d < 0 || d > maxRetryAfter {
			t.Errorf("parseRetryAfter(%q) = %v, outside [0, %v]", v, d, maxRetryAfter)
		}
	})
}

func FuzzErrorCode(f *testing.F) {
	for _, s := range []string{`{"error":{"code":"conflict","message":"m"}}`, `{}`, `null`, `{"error":"x"}`, "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if errorCode(503, []byte(body)) == "" {
			t.Errorf("errorCode(%q) is empty: every failure needs a name to be counted under", body)
		}
	})
}
