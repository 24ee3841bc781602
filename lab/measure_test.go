package lab

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"runtime/metrics"
	"testing"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name         string
		xs           []float64
		median, sprd float64
	}{
		{"Odd", []float64{3, 1, 2}, 2, 2},
		{"Even", []float64{4, 1, 3, 2}, 2.5, 3},
		{"One", []float64{7}, 7, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := summarize("x", "u", tt.xs)
			if m.Median != tt.median || m.Spread != tt.sprd || m.Runs != len(tt.xs) {
				t.Errorf("got %+v, want median %v spread %v runs %d", m, tt.median, tt.sprd, len(tt.xs))
			}
		})
	}
	if m := summarize("x", "u", nil); m.Runs != 0 {
		t.Errorf("empty: got %+v", m)
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		q    float64
		want float64
	}{{0, 1}, {0.5, 5}, {0.99, 10}, {1, 10}}
	for _, tt := range tests {
		if got := quantile(xs, tt.q); got != tt.want {
			t.Errorf("quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if !math.IsNaN(quantile(nil, 0.5)) {
		t.Error("quantile of nothing should be NaN")
	}
}

func TestHeaderOf(t *testing.T) {
	var b [16]byte
	binary.NativeEndian.PutUint64(b[0:8], 0x10)
	binary.NativeEndian.PutUint64(b[8:16], 16)
	data, length := headerOf(b)
	if data != 0x10 || length != 16 {
		t.Errorf("headerOf = %#x, %d; want 0x10, 16", data, length)
	}
}

func TestCraftedRead(t *testing.T) {
	got, _ := craftedRead()
	if got != "session=s3cr3t; not a trace id" {
		t.Errorf("the snippet read %q; it should read the buffer the crafted header points at", got)
	}
}

func TestHistDiff(t *testing.T) {
	before := &metrics.Float64Histogram{Counts: []uint64{0, 1, 0}, Buckets: []float64{math.Inf(-1), 1, 2, math.Inf(1)}}
	after := &metrics.Float64Histogram{Counts: []uint64{0, 3, 1}, Buckets: before.Buckets}
	got := histDiff(before, after)
	want := []float64{1.5, 1.5, 2}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("got %v, want %v", got, want)
		}
	}
}

func TestAbbrev(t *testing.T) {
	if got := abbrev("short", 10); got != "short" {
		t.Errorf("got %q", got)
	}
	got := abbrev("one two three four", 10)
	if got != "one two …" {
		t.Errorf("got %q, want %q", got, "one two …")
	}
}

var testSink []byte

func TestMeasureOpCountsAllocations(t *testing.T) {
	c := measureOp(0, func(n int) {
		for range n {
			testSink = make([]byte, 64)
		}
	})
	if c.allocs < 0.5 || c.bytes < 32 {
		t.Errorf("allocs/op = %v, B/op = %v; want about 1 and 64", c.allocs, c.bytes)
	}
}

func TestMeasurementJSONNaN(t *testing.T) {
	b, err := json.Marshal(Measurement{Name: "r", Median: math.NaN(), Spread: math.Inf(1), Unit: "x", Runs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"r","median":null,"spread":null,"unit":"x","runs":1}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}
