package httpload

import (
	"bytes"
	"testing"
	"time"
)

func TestOrderID(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"Order", `{"id":"ord_1","user_id":"u"}`, "ord_1"},
		{"NoID", `{"error":{"code":"internal"}}`, ""},
		{"Unterminated", `{"id":"ord_1`, ""},
		{"Empty", ``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(orderID([]byte(tt.in))); got != tt.want {
				t.Errorf("orderID(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzOrderID: the id is read from the server's answer, network input; it
// must never panic and, when found, be a slice of the input without quotes.
func FuzzOrderID(f *testing.F) {
	for _, s := range []string{`{"id":"ord_1"}`, `{"id":"`, `"id":""`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id := orderID(b)
		if id != nil && (bytes.IndexByte(id, '"') >= 0 || !bytes.Contains(b, id)) {
			t.Fatalf("orderID(%q) = %q", b, id)
		}
	})
}

func TestPercentile(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		p    float64
		want time.Duration
	}{{0.5, 5}, {0.99, 10}, {1, 10}, {0, 1}}
	for _, tt := range tests {
		if got := percentile(d, tt.p); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
