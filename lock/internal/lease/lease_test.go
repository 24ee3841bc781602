package lease_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/lock/internal/lease"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// renewers are the two ways a lease is renewed: a timer of its own, or a
// Renewer shared with other leases (which may renew up to one tick, TTL/12,
// later; one more tick of slack for scheduling under -race on a busy box).
var renewers = []struct {
	name string
	new  func(t *testing.T) *lease.Renewer
	late time.Duration // how much later than a timer a renewal may come, in TTLs/12
}{
	{"OwnTimer", func(*testing.T) *lease.Renewer { return nil }, 0},
	{"Renewer", func(t *testing.T) *lease.Renewer {
		r := &lease.Renewer{}
		t.Cleanup(r.Close)
		return r
	}, 2},
}

func TestRenewal(t *testing.T) {
	for _, rn := range renewers {
		t.Run(rn.name, func(t *testing.T) { testRenewal(t, rn.new, rn.late) })
	}
}

func testRenewal(t *testing.T, newRenewer func(*testing.T) *lease.Renewer, late time.Duration) {
	const ttl = 300 * time.Millisecond
	errDown := errors.New("backend down")
	for _, tc := range []struct {
		name     string
		extend   func(n int64) (bool, error)
		valid    time.Duration // Config.Valid
		wantLost bool
		// Done must close before this, measured from Start: the lock
		// may be gone on the server from Sent+TTL on.
		within time.Duration
	}{
		{"Renewed", func(int64) (bool, error) { return true, nil }, 0, false, 0},
		// A lock handed over for less than its TTL is renewed before
		// that shorter grant runs out.
		{"ShortFirstGrantRenewedEarly", func(int64) (bool, error) { return true, nil }, ttl / 4, false, 0},
		{"ShortFirstGrantLostByItsDeadline", func(int64) (bool, error) { return false, errDown }, ttl / 4, true, ttl / 4},
		{"ExtendFailsLostByDeadline", func(int64) (bool, error) { return false, errDown }, 0, true, ttl},
		{"NotHeldLostAtOnce", func(int64) (bool, error) { return false, nil }, 0, true, ttl/3 + ttl/10},
		{"FailsAfterOneRenewal", func(n int64) (bool, error) {
			if n == 1 {
				return true, nil
			}
			return false, errDown
		}, 0, true, ttl/3 + ttl},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			start := time.Now()
			le := lease.Start(lease.Config{
				Token: 7,
				TTL:   ttl,
				Sent:  start,
				Valid: tc.valid,
				Extend: func(ctx context.Context) (bool, error) {
					return tc.extend(calls.Add(1))
				},
				Release: func(context.Context) error { return nil },
				Renewer: newRenewer(t),
			})
			defer func() { _ = le.Release(context.Background()) }()
			select {
			case <-le.Done():
				if !tc.wantLost {
					t.Fatalf("Done closed after %v although every renewal succeeded", time.Since(start))
				}
				if d := time.Since(start); d >= tc.within+late*ttl/12 {
					t.Errorf("Done closed after %v, want before %v", d, tc.within)
				}
			case <-time.After(3 * ttl):
				if tc.wantLost {
					t.Fatalf("Done still open after %v", 3*ttl)
				}
				if calls.Load() < 3 {
					t.Errorf("%d renewals in %v, want one every TTL/3", calls.Load(), 3*ttl)
				}
			}
		})
	}
}

func TestRelease(t *testing.T) {
	for _, rn := range renewers {
		t.Run(rn.name, func(t *testing.T) { testRelease(t, rn.new(t)) })
	}
}

func testRelease(t *testing.T, r *lease.Renewer) {
	var extends, releases, ends atomic.Int64
	errGone := errors.New("gone")
	le := lease.Start(lease.Config{
		Token: 42,
		TTL:   30 * time.Millisecond,
		Sent:  time.Now(),
		Extend: func(ctx context.Context) (bool, error) {
			extends.Add(1)
			return true, nil
		},
		Release: func(context.Context) error { releases.Add(1); return errGone },
		OnEnd:   func() { ends.Add(1) },
		Renewer: r,
	})
	if got, want := le.Token(), uint64(42); got != want {
		t.Errorf("Token = %d, want %d", got, want)
	}
	time.Sleep(25 * time.Millisecond)
	if err := le.Release(context.Background()); !errors.Is(err, errGone) {
		t.Errorf("Release = %v, want %v", err, errGone)
	}
	n := extends.Load()
	time.Sleep(40 * time.Millisecond)
	if extends.Load() != n {
		t.Error("renewal went on after Release")
	}
	if err := le.Release(context.Background()); !errors.Is(err, errGone) {
		t.Errorf("second Release = %v, want the first result %v", err, errGone)
	}
	select {
	case <-le.Done():
	default:
		t.Error("Done open after Release")
	}
	if releases.Load() != 1 || ends.Load() != 1 {
		t.Errorf("release ran %d times, OnEnd %d times; want 1 and 1", releases.Load(), ends.Load())
	}
}

// TestRenewerClosedWhileHeld: leases still held when their Renewer closes go
// on being renewed, by timers of their own.
func TestRenewerClosedWhileHeld(t *testing.T) {
	const ttl = 60 * time.Millisecond
	r := &lease.Renewer{}
	var extends atomic.Int64
	le := lease.Start(lease.Config{
		Token:   1,
		TTL:     ttl,
		Sent:    time.Now(),
		Extend:  func(context.Context) (bool, error) { extends.Add(1); return true, nil },
		Release: func(context.Context) error { return nil },
		Renewer: r,
	})
	defer func() { _ = le.Release(context.Background()) }()
	r.Close()
	select {
	case <-le.Done():
		t.Fatal("Done closed although every renewal succeeded")
	case <-time.After(5 * ttl):
	}
	if extends.Load() < 3 {
		t.Errorf("%d renewals in %v after the Renewer closed, want one every TTL/3", extends.Load(), 5*ttl)
	}
}
