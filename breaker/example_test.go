package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/orderflow/orderflow/breaker"
)

// Do wraps a call: it is rejected with ErrOpen while the breaker is open,
// timed and classified otherwise.
func Example() {
	b := breaker.New(breaker.Config{Name: "risk-engine", ConsecutiveFailures: 3})
	ctx := context.Background()
	failing := func(context.Context) error { return errors.New("connection refused") }

	for i := range 5 {
		err := b.Do(ctx, failing)
		fmt.Printf("call %d: %v\n", i+1, err)
	}
	fmt.Println("state:", b.State())
	// Output:
	// call 1: connection refused
	// call 2: connection refused
	// call 3: connection refused
	// call 4: breaker: open
	// call 5: breaker: open
	// state: open
}

// Allow and a Ticket suit calls whose outcome is not an error, such as an
// HTTP status: 5xx and 429 count as failures, 4xx as successes.
func ExampleBreaker_Allow() {
	b := breaker.New(breaker.Config{ConsecutiveFailures: 2})
	for _, status := range []int{http.StatusOK, http.StatusNotFound, http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusOK} {
		t, err := b.Allow()
		if errors.Is(err, breaker.ErrOpen) {
			fmt.Println("rejected")
			continue
		}
		// … send the request, measure its latency …
		t.Record(breaker.HTTPStatus(status), 20*time.Millisecond)
		fmt.Println(status, breaker.HTTPStatus(status))
	}
	// Output:
	// 200 success
	// 404 success
	// 503 failure
	// 502 failure
	// rejected
}

// OnStateChange is where a service exports the state as a metric and logs
// the snapshot that explains the decision. DryRun reports decisions without
// acting on them.
func ExampleConfig_onStateChange() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // keep the output stable
			}
			return a
		},
	}))
	b := breaker.New(breaker.Config{
		Name: "callbacks", ConsecutiveFailures: 2, DryRun: true,
		OnStateChange: func(from, to breaker.State, s breaker.Snapshot) {
			// e.g. stateGauge.WithLabelValues(s.Name).Set(float64(to))
			logger.Info("breaker", "from", from, "to", to, "reason", s.Reason, "rejected", s.Rejected)
		},
	})
	for range 3 {
		t, err := b.Allow() // never rejects: dry run
		if err != nil {
			panic(err)
		}
		t.Done(errors.New("timeout"), time.Second)
	}
	fmt.Println("would have rejected:", b.Snapshot().Rejected)
	// Output:
	// level=INFO msg=breaker from=closed to=open reason=consecutive_failures rejected=0
	// would have rejected: 1
}
