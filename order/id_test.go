package order

import (
	"strings"
	"testing"
	"time"
)

func TestIDsAreSortableAndWellFormed(t *testing.T) {
	var g idGen
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		at   func(i int) time.Time
	}{
		{"SameMillisecond", func(int) time.Time { return t0 }},
		{"Advancing", func(i int) time.Time { return t0.Add(time.Duration(i) * time.Millisecond) }},
		{"ClockStepsBack", func(i int) time.Time { return t0.Add(-time.Duration(i) * time.Second) }},
	}
	prev := ""
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := 0; i < 1000; i++ {
				id := g.next("ord_", tt.at(i))
				if len(id) != 30 || !strings.HasPrefix(id, "ord_") {
					t.Fatalf("id %q: want ord_ + 26 characters", id)
				}
				for _, c := range id[4:] {
					if !strings.ContainsRune(crockford, c) {
						t.Fatalf("id %q: %q is not Crockford base32", id, c)
					}
				}
				if id <= prev {
					t.Fatalf("id %q not after %q", id, prev)
				}
				prev = id
			}
		})
	}
	// The leading digits encode the time: a later millisecond sorts later
	// regardless of the random part.
	a := (&idGen{}).next("", t0)
	b := (&idGen{}).next("", t0.Add(time.Millisecond))
	if a >= b || a[:10] >= b[:10] {
		t.Errorf("time prefix not ordered: %s %s", a, b)
	}
}
