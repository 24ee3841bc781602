package deadline_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/deadline"
)

// apiExpired stands in for the HTTP layer's hook, which writes the API's
// error body.
func apiExpired(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusGatewayTimeout)
	_, _ = io.WriteString(w, `{"error":{"code":"deadline_exceeded","message":"request deadline exceeded"}}`)
}

func TestMiddlewareBudget(t *testing.T) {
	tests := []struct {
		name   string
		own    time.Duration
		header string // "" means absent
		margin time.Duration
		want   time.Duration // upper bound of the handler's remaining time; 0: no deadline
	}{
		{"OwnOnly", 5 * time.Second, "", 0, 5 * time.Second},
		{"HeaderSmallerMinusMargin", 5 * time.Second, "3000", 0, 3*time.Second - deadline.DefaultMargin},
		{"CustomMargin", 5 * time.Second, "3000", 500 * time.Millisecond, 2500 * time.Millisecond},
		{"NegativeMarginMeansNone", 5 * time.Second, "3000", -1, 3 * time.Second},
		{"OwnSmaller", 1 * time.Second, "3000", 0, time.Second},
		{"NoOwnHeaderOnly", 0, "2000", 0, 2*time.Second - deadline.DefaultMargin},
		{"NoBudgetAtAll", 0, "", 0, 0},
		{"GarbageHeaderIgnored", 4 * time.Second, "soon", 0, 4 * time.Second},
		{"NegativeHeaderIgnored", 4 * time.Second, "-100", 0, 4 * time.Second},
		{"FractionHeaderIgnored", 4 * time.Second, "1.5", 0, 4 * time.Second},
		{"OverflowHeaderIgnored", 4 * time.Second, "999999999999999", 0, 4 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var left time.Duration
			var hasDeadline bool
			h := deadline.Middleware(tt.own, deadline.Options{Margin: tt.margin, OnExpired: apiExpired})(
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					left, hasDeadline = deadline.Remaining(r.Context())
					w.WriteHeader(http.StatusNoContent)
				}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.header != "" {
				req.Header.Set(deadline.Header, tt.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusNoContent {
				t.Fatalf("status %d, want 204", rec.Code)
			}
			if tt.want == 0 {
				if hasDeadline {
					t.Fatalf("handler got a deadline %v away, want none", left)
				}
				return
			}
			// Upper bound only: how much less we saw depends on the scheduler.
			if !hasDeadline || left > tt.want || left < tt.want/2 {
				t.Fatalf("handler had %v (deadline %v), want at most %v", left, hasDeadline, tt.want)
			}
		})
	}
}

func TestMiddlewareExpiredOnArrival(t *testing.T) {
	tests := []struct{ name, header string }{
		{"HeaderBelowMargin", "10"},
		{"HeaderZero", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			h := deadline.Middleware(time.Second, deadline.Options{OnExpired: apiExpired})(
				http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set(deadline.Header, tt.header)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if called || rec.Code != http.StatusGatewayTimeout {
				t.Fatalf("handler called: %v, status %d; want not called, 504", called, rec.Code)
			}
		})
	}
}

func TestMiddlewareDefaultOnExpired(t *testing.T) {
	h := deadline.Middleware(time.Second, deadline.Options{})(http.NotFoundHandler())
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set(deadline.Header, "1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", rec.Code)
	}
}

// TestMiddlewareRunsOut covers a deadline that passes while the handler runs.
// The handlers synchronise on the 504 being written, not on sleeps, so the
// outcome does not depend on the machine's speed.
func TestMiddlewareRunsOut(t *testing.T) {
	tests := []struct {
		name     string
		handler  func(answered <-chan struct{}, t *testing.T) http.HandlerFunc
		wantCode int
		wantBody string
		wantHdr  string // value of X-Handler, "" for absent
	}{
		{"HandlerIgnoresContext", func(answered <-chan struct{}, t *testing.T) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Handler", "late")
				<-answered // still working when the 504 went out
				w.WriteHeader(http.StatusOK)
				if _, err := io.WriteString(w, "late"); !errors.Is(err, http.ErrHandlerTimeout) {
					t.Errorf("late Write = %v, want ErrHandlerTimeout", err)
				}
			}
		}, http.StatusGatewayTimeout, "deadline_exceeded", ""},
		{"HandlerReturnsSilently", func(<-chan struct{}, *testing.T) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
		}, http.StatusGatewayTimeout, "deadline_exceeded", ""},
		{"HandlerCommittedFirst", func(_ <-chan struct{}, t *testing.T) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Handler", "streaming")
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, "part1,")
				<-r.Context().Done()
				// The response is the handler's: it may still finish it.
				if _, err := io.WriteString(w, "part2"); err != nil {
					t.Errorf("Write after commit = %v", err)
				}
			}
		}, http.StatusOK, "part1,part2", "streaming"},
		{"HeadersWithoutWrite", func(<-chan struct{}, *testing.T) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Handler", "set") }
		}, http.StatusOK, "", "set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answered := make(chan struct{})
			onExpired := func(w http.ResponseWriter, r *http.Request) {
				apiExpired(w, r)
				close(answered)
			}
			srv := httptest.NewServer(deadline.Middleware(200*time.Millisecond, deadline.Options{OnExpired: onExpired})(tt.handler(answered, t)))
			defer srv.Close()
			resp, err := srv.Client().Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantCode || !strings.Contains(string(body), tt.wantBody) || resp.Header.Get("X-Handler") != tt.wantHdr {
				t.Fatalf("got %d %q X-Handler=%q; want %d containing %q, X-Handler=%q",
					resp.StatusCode, body, resp.Header.Get("X-Handler"), tt.wantCode, tt.wantBody, tt.wantHdr)
			}
		})
	}
}

func TestMiddlewareKeepsEarlierDeadline(t *testing.T) {
	var left time.Duration
	h := deadline.Middleware(time.Hour, deadline.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		left, _ = deadline.Remaining(r.Context())
	}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	if left > time.Second {
		t.Fatalf("handler had %v, more than the request's own second", left)
	}
}

func TestMiddlewareAttachesBudgets(t *testing.T) {
	var got deadline.Budgets
	b := deadline.Budgets{Storage: 7 * time.Millisecond}
	h := deadline.Middleware(time.Second, deadline.Options{Budgets: b})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = deadline.BudgetsFrom(r.Context())
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if got.Storage != 7*time.Millisecond || got.Call != deadline.DefaultCall {
		t.Fatalf("budgets in handler = %+v", got)
	}
}

func TestMiddlewareParentDeadlinePassed(t *testing.T) {
	called := false
	h := deadline.Middleware(time.Second, deadline.Options{OnExpired: apiExpired})(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	if called || rec.Code != http.StatusGatewayTimeout {
		t.Fatalf("handler called: %v, status %d; want not called, 504", called, rec.Code)
	}
}

// TestMiddlewareAnswersWhileHandlerStuck: the client reads the whole 504
// while the handler is still blocked, so a stuck handler costs the client
// nothing past its deadline. The handler is released only afterwards.
func TestMiddlewareAnswersWhileHandlerStuck(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(deadline.Middleware(30*time.Millisecond, deadline.Options{OnExpired: apiExpired})(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release })))
	defer srv.Close()
	defer close(release) // runs before srv.Close, which waits for the handler
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), "deadline_exceeded") {
		t.Fatalf("got %d %q, want the 504 body", resp.StatusCode, body)
	}
}
