package deadline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/orderflow/orderflow/deadline"
)

// A service behind Middleware calls another through Transport: the callee
// learns how long the caller can still wait, minus the margin.
func Example() {
	callee := httptest.NewServer(deadline.Middleware(deadline.DefaultCall, deadline.Options{})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			left, _ := deadline.Remaining(r.Context())
			fmt.Fprintln(w, left <= 500*time.Millisecond-deadline.DefaultMargin)
		})))
	defer callee.Close()

	client := &http.Client{Transport: &deadline.Transport{Base: callee.Client().Transport}}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, callee.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(string(body))
	// Output: true
}

// When less than the floor is left, Transport refuses without a network call.
func ExampleTransport() {
	client := &http.Client{Transport: &deadline.Transport{Floor: 50 * time.Millisecond}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://192.0.2.1/never-dialled", nil)
	_, err := client.Do(req)
	fmt.Println(errors.Is(err, deadline.ErrBudgetExhausted), errors.Is(err, context.DeadlineExceeded))
	// Output: true true
}

// Storage derives the storage layer's context: never more than the request
// has left, never more than the storage budget.
func ExampleStorage() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ctx = deadline.WithBudgets(ctx, deadline.Budgets{Storage: 100 * time.Millisecond})

	sctx, scancel := deadline.Storage(ctx)
	defer scancel()
	left, _ := deadline.Remaining(sctx)
	fmt.Println(left <= 100*time.Millisecond)
	// Output: true
}

// Detach runs follow-up work after the request is gone, under its own budget.
func ExampleDetach() {
	req, cancel := context.WithCancel(context.Background())
	cancel() // the client went away

	ctx, stop := deadline.Detach(req, 10*time.Second)
	defer stop()
	fmt.Println(req.Err(), ctx.Err())
	// Output: context canceled <nil>
}

func ExampleParseHeader() {
	for _, v := range []string{"1200", "-1", "1.5", "soon"} {
		d, ok := deadline.ParseHeader(v)
		fmt.Println(v, d, ok)
	}
	// Output:
	// 1200 1.2s true
	// -1 0s false
	// 1.5 0s false
	// soon 0s false
}
