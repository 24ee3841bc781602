package deadline_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow/deadline"
)

func TestTransport(t *testing.T) {
	tests := []struct {
		name      string
		timeout   time.Duration // 0: no deadline
		floor     time.Duration
		wantCall  bool
		wantMaxMs int64 // upper bound of the header the server saw; -1: absent
	}{
		{"NoDeadlineNoHeader", 0, 0, true, -1},
		{"HeaderIsRemaining", 2 * time.Second, 0, true, 2000},
		{"BelowDefaultFloor", 3 * time.Millisecond, 0, false, 0},
		{"BelowCustomFloor", 300 * time.Millisecond, time.Second, false, 0},
		{"AlreadyExpired", -time.Second, 0, false, 0},
		{"NegativeFloorMeansNoFloor", time.Second, -1, true, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			var seen atomic.Value
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				seen.Store(r.Header.Values(deadline.Header))
			}))
			defer srv.Close()
			client := &http.Client{Transport: &deadline.Transport{Base: srv.Client().Transport, Floor: tt.floor}}

			ctx := context.Background()
			if tt.timeout != 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			body := &closeRecorder{Reader: strings.NewReader("{}")}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if !tt.wantCall {
				if !errors.Is(err, deadline.ErrBudgetExhausted) || !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v, want ErrBudgetExhausted and DeadlineExceeded", err)
				}
				if calls.Load() != 0 {
					t.Fatal("the server was called with no time left")
				}
				if !body.closed.Load() {
					t.Fatal("request body not closed on refusal")
				}
				return
			}
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			_ = resp.Body.Close()
			vals, _ := seen.Load().([]string)
			if tt.wantMaxMs < 0 {
				if len(vals) != 0 {
					t.Fatalf("server saw %s %v, want none", deadline.Header, vals)
				}
				return
			}
			if len(vals) != 1 {
				t.Fatalf("server saw %s %v, want exactly one value", deadline.Header, vals)
			}
			got, ok := deadline.ParseHeader(vals[0])
			if !ok || got > time.Duration(tt.wantMaxMs)*time.Millisecond {
				t.Fatalf("server saw %q, want at most %d", vals[0], tt.wantMaxMs)
			}
			if req.Header.Get(deadline.Header) != "" {
				t.Fatal("Transport modified the caller's request")
			}
		})
	}
}

// TestTransportReplacesCallerHeader: a hand-set header must not let a caller
// claim more time than its context has.
func TestTransportReplacesCallerHeader(t *testing.T) {
	var seen atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Get(deadline.Header))
	}))
	defer srv.Close()
	client := &http.Client{Transport: &deadline.Transport{Base: srv.Client().Transport}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	req.Header.Set(deadline.Header, "999999")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if d, ok := deadline.ParseHeader(seen.Load().(string)); !ok || d > time.Second {
		t.Fatalf("server saw %v, want at most 1000 ms", seen.Load())
	}
}

type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }
