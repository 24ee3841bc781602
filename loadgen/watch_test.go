package loadgen

import (
	"strconv"
	"testing"
	"time"
)

// The lister's fifo stays within twice the orders watched, even behind an
// order that is never decided.
func TestWatchSetFifoStaysBounded(t *testing.T) {
	s := newWatchSet(1_000_000, true)
	now := time.Now()
	s.add(&watched{id: "stuck", serverCreated: now, next: now.Add(time.Hour), index: -1})
	for i := range 10_000 {
		id := strconv.Itoa(i)
		s.add(&watched{id: id, serverCreated: now, next: now.Add(time.Hour), index: -1})
		if w := s.finish(id); w == nil {
			t.Fatalf("finish(%s) = nil", id)
		}
		s.done()
	}
	if got := s.active(); got != 1 {
		t.Fatalf("active = %d, want 1 (the stuck order)", got)
	}
	if n := len(s.fifo); n > 2*len(s.byID)+64+1 {
		t.Fatalf("fifo holds %d for %d watched", n, len(s.byID))
	}
	if oldest, ok := s.oldest(); !ok || !oldest.Equal(now) {
		t.Fatalf("oldest = %v, %v: want the stuck order's", oldest, ok)
	}
}

// A poller and the lister seeing one order decided count it once.
func TestWatchSetCountsOnce(t *testing.T) {
	s := newWatchSet(10, true)
	now := time.Now()
	w := &watched{id: "a", serverCreated: now, next: now, index: -1}
	s.add(w)
	taken := s.take(t.Context())
	if taken != w {
		t.Fatal("take did not return the order")
	}
	if s.finish("a") == nil { // the lister first …
		t.Fatal("finish of a taken order = nil")
	}
	s.done()
	if s.claim(w) { // … so the poller's claim loses
		t.Fatal("claim after finish succeeded")
	}
	s.done()
	if got := s.active(); got != 0 {
		t.Fatalf("active = %d, want 0", got)
	}
}
