package breaker_test

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow/breaker"
)

// BenchmarkClosed is the closed-state hot path: Allow then Done with a
// success. It must report 0 allocs/op.
func BenchmarkClosed(b *testing.B) {
	br := breaker.New(breaker.Config{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t, err := br.Allow()
			if err != nil {
				b.Fatal(err)
			}
			t.Done(nil, 5*time.Millisecond)
		}
	})
}

// BenchmarkOpen is the rejection path of an open breaker, which sees the
// full call rate during an outage.
func BenchmarkOpen(b *testing.B) {
	br := breaker.New(breaker.Config{ConsecutiveFailures: 1, MinOpen: time.Hour})
	t, _ := br.Allow()
	t.Record(breaker.Failure, time.Millisecond)
	if br.State() != breaker.Open {
		b.Fatal("breaker did not open")
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := br.Allow(); err == nil {
				b.Fatal("open breaker admitted a call")
			}
		}
	})
}

// The closed path must not allocate: checked in the test run too, so that a
// regression fails CI instead of waiting for someone to read a benchmark.
func TestClosedPathDoesNotAllocate(t *testing.T) {
	br := breaker.New(breaker.Config{})
	allocs := testing.AllocsPerRun(1000, func() {
		tk, err := br.Allow()
		if err != nil {
			t.Fatal(err)
		}
		tk.Done(nil, 5*time.Millisecond)
	})
	if allocs != 0 {
		t.Fatalf("closed path: %v allocs per call, want 0", allocs)
	}
}
