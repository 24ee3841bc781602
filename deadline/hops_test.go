package deadline_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/deadline"
)

// storageStub is the innermost hop. It works in one-millisecond steps for as
// long as it is asked to, stopping at its own deadline, and records what it
// saw so the test can check that no work ran after the edge's deadline.
type storageStub struct {
	work time.Duration

	mu        sync.Mutex
	calls     int
	budget    time.Duration // remaining time when the handler started
	lastStep  time.Time     // start of the last step of work
	completed bool
}

func (s *storageStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	dl, _ := ctx.Deadline()
	s.mu.Lock()
	s.calls++
	s.budget = time.Until(dl)
	s.mu.Unlock()
	for done := time.Duration(0); done < s.work; done += time.Millisecond {
		// The clock, not only ctx.Err(): under load the context's timer may
		// fire late, and the question is whether work starts after the time.
		now := time.Now()
		if !now.Before(dl) || ctx.Err() != nil {
			return // the middleware answers 504
		}
		s.mu.Lock()
		s.lastStep = now
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	s.mu.Lock()
	s.completed = true
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// relay calls url with the request's context through deadline.Transport and
// copies the status back; a refused or timed-out call is a 504.
func relay(client *http.Client, url string, w http.ResponseWriter, r *http.Request) (refused bool) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, url, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			apiExpired(w, r)
			return errors.Is(err, deadline.ErrBudgetExhausted)
		}
		http.Error(w, err.Error(), http.StatusBadGateway)
		return false
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return false
}

// TestThreeHops chains edge → service → storage over real HTTP, each server
// behind Middleware and each client behind Transport. The assertions are upper
// bounds that hold however slow the machine is: budgets only shrink, and work
// never starts after a deadline.
func TestThreeHops(t *testing.T) {
	const margin = deadline.DefaultMargin
	tests := []struct {
		name          string
		edge          time.Duration // the edge server's own budget
		middleSleep   time.Duration // work the service does before calling storage, deaf to ctx
		storageWork   time.Duration
		wantStatus    int
		wantStorage   bool // storage called at all
		wantCompleted bool // storage finished its work
	}{
		// 300 ms at the edge, 20 ms margin per hop, 80 ms in the middle:
		// storage may have at most 300 - 20 - 80 - 20 = 180 ms.
		{"StorageSeesWhatIsLeft", 300 * time.Millisecond, 80 * time.Millisecond, 0, http.StatusOK, true, true},
		// Storage would work for 2 s; it must stop before the edge's deadline.
		{"StorageStopsBeforeCallerDeadline", 300 * time.Millisecond, 50 * time.Millisecond, 2 * time.Second, http.StatusGatewayTimeout, true, false},
		// 100 ms at the edge, at most 80 ms of it left for the service, 78
		// slept: at most 2 ms left, below the 5 ms floor, so storage is never
		// called, however late or early anything ran.
		{"FloorPreventsCall", 100 * time.Millisecond, 78 * time.Millisecond, time.Millisecond, http.StatusGatewayTimeout, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := &storageStub{work: tt.storageWork}
			storage := httptest.NewServer(deadline.Middleware(deadline.DefaultStorage, deadline.Options{OnExpired: apiExpired})(stub))
			defer storage.Close()

			var serviceRefused bool
			toStorage := &http.Client{Transport: &deadline.Transport{Base: storage.Client().Transport}}
			service := httptest.NewServer(deadline.Middleware(deadline.DefaultCall, deadline.Options{OnExpired: apiExpired})(
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					// Work that does not watch the context, so the call
					// below is always attempted and the Transport decides.
					time.Sleep(tt.middleSleep)
					serviceRefused = relay(toStorage, storage.URL, w, r)
				})))
			defer service.Close()

			var edgeDeadline time.Time
			toService := &http.Client{Transport: &deadline.Transport{Base: service.Client().Transport}}
			edge := httptest.NewServer(deadline.Middleware(tt.edge, deadline.Options{OnExpired: apiExpired})(
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					edgeDeadline, _ = r.Context().Deadline()
					relay(toService, service.URL, w, r)
				})))
			defer edge.Close()

			client := &http.Client{Timeout: 30 * time.Second} // a user with no header
			resp, err := client.Get(edge.URL)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			// Close waits for every handler, so the records below are final.
			edge.Close()
			service.Close()
			storage.Close()

			if resp.StatusCode != tt.wantStatus {
				t.Errorf("edge answered %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			stub.mu.Lock()
			defer stub.mu.Unlock()
			if got := stub.calls > 0; got != tt.wantStorage {
				t.Fatalf("storage called: %v, want %v (service refused by floor: %v)", got, tt.wantStorage, serviceRefused)
			}
			if !tt.wantStorage {
				if !serviceRefused {
					t.Error("the service did not report the floor refusal")
				}
				return
			}
			if limit := tt.edge - 2*margin - tt.middleSleep; stub.budget > limit {
				t.Errorf("storage had %v, more than the %v its caller had left", stub.budget, limit)
			}
			if stub.completed != tt.wantCompleted {
				t.Errorf("storage completed its work: %v, want %v", stub.completed, tt.wantCompleted)
			}
			if !stub.lastStep.IsZero() && !stub.lastStep.Before(edgeDeadline) {
				t.Errorf("storage started work %v after the edge's deadline", stub.lastStep.Sub(edgeDeadline))
			}
		})
	}
}
