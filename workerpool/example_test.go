package workerpool_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/workerpool"
)

func Example() {
	p := workerpool.New(workerpool.Config{Workers: 4, QueueSize: 16})
	var sum atomic.Int64
	for i := 1; i <= 10; i++ {
		// Submit waits for room at most until its ctx ends: back-pressure.
		if err := p.Submit(context.Background(), func(context.Context) { sum.Add(int64(i)) }); err != nil {
			fmt.Println("submit:", err)
		}
	}
	// Close drains what is queued before returning.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		fmt.Println("close:", err)
	}
	fmt.Println(sum.Load(), p.Stats().Completed)
	// Output: 55 10
}

func ExamplePool_TrySubmit() {
	p := workerpool.New(workerpool.Config{Workers: 1, QueueSize: 1})
	defer p.Close(context.Background())

	gate := make(chan struct{})
	started := make(chan struct{})
	_ = p.TrySubmit(func(context.Context) { close(started); <-gate }) // occupies the worker
	<-started
	_ = p.TrySubmit(func(context.Context) {}) // fills the queue

	// A request handler that must not wait sheds load instead.
	err := p.TrySubmit(func(context.Context) {})
	fmt.Println(errors.Is(err, workerpool.ErrFull), p.Stats().Rejected)
	close(gate)
	// Output: true 1
}

func ExamplePool_Submit_nested() {
	p := workerpool.New(workerpool.Config{Workers: 1, QueueSize: 1})
	var ran atomic.Int64
	_ = p.Submit(context.Background(), func(ctx context.Context) {
		// Passing the task's ctx lets the pool see a nested Submit: when the
		// queue is full it runs the task here instead of waiting for a worker
		// (this one) that will never come free.
		for range 5 {
			_ = p.Submit(ctx, func(context.Context) { ran.Add(1) })
		}
	})
	_ = p.Close(context.Background())
	fmt.Println(ran.Load())
	// Output: 5
}

func ExamplePool_Close() {
	p := workerpool.New(workerpool.Config{Workers: 1})
	_ = p.Submit(context.Background(), func(ctx context.Context) {
		// A long task that watches the pool's context.
		select {
		case <-ctx.Done():
		case <-time.After(time.Hour):
		}
	})
	// Shutdown with a bound: when it runs out, the task's context is
	// cancelled and Close returns without waiting further.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := p.Close(ctx)
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	<-p.Done() // the worker is gone once the task has returned
	fmt.Println(p.Stats().Completed)
	// Output:
	// true
	// 1
}
