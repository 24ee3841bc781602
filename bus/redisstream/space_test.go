package redisstream

import (
	"context"
	"testing"
	"time"
)

// TestWaitSpaceWakesEveryWaiter: the reader and the reclaimer both wait for
// room when the consumer is full; one release must wake both. With a single
// wake-up token the reclaimer could take it and leave the reader parked
// forever with nothing held (seen as a stalled volume test under CPU load).
func TestWaitSpaceWakesEveryWaiter(t *testing.T) {
	c := &consumer{
		cfg:        Config{MaxInFlight: 1},
		heldEvents: 1,
		freed:      make(chan struct{}),
		settled:    make(chan struct{}, 1),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const waiters = 2
	woke := make(chan bool, waiters)
	for range waiters {
		go func() { woke <- c.waitSpace(ctx) }()
	}
	for c.starved.Load() < waiters {
		if ctx.Err() != nil {
			t.Fatal("the waiters never started waiting")
		}
		time.Sleep(time.Millisecond)
	}
	c.mu.Lock()
	c.heldEvents = 0
	c.freedLocked()
	c.mu.Unlock()
	for i := range waiters {
		select {
		case ok := <-woke:
			if !ok {
				t.Fatalf("waiter %d: waitSpace = false, want true", i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d waiters still parked after the release", waiters-i, waiters)
		}
	}
	if n := c.starved.Load(); n != 0 {
		t.Errorf("starved = %d after every waiter left, want 0", n)
	}
}
