package sqlite_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/store/storetest"
)

// BenchmarkCallbackPath measures the callback path of the order service: a
// new risk.decided recorded (durably) and then applied, by 1, 16 and 64
// concurrent writers, the way HTTP handlers and the apply pool drive the
// store. One op is one callback: two writes; p50-ms and p99-ms are the
// latency of one callback (record + apply) as its goroutine saw it. commits/write is fsyncs per
// write; commits/callback is fsyncs per callback request.
func BenchmarkCallbackPath(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := MustOpen(b)
			ctx := context.Background()
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = fmt.Sprintf("ord_%d", i)
			}
			// The orders exist before the clock starts; creating them
			// concurrently keeps the setup short.
			parallel(b, 64, len(ids), func(i int) error {
				_, _, err := s.CreateOrder(ctx, storetest.NewOrder(ids[i], "u_1", time.Now()), storetest.NewEvent(ids[i]), nil)
				return err
			})
			before := s.Stats()
			took := make([]time.Duration, b.N)
			b.ResetTimer()
			parallel(b, writers, len(ids), func(i int) error {
				start := time.Now()
				defer func() { took[i] = time.Since(start) }()
				c := storetest.NewCallback(ids[i], orderflow.EventRiskDecided, orderflow.DecisionApprove, 0.1, "v3")
				if r, err := s.RecordCallback(ctx, c); err != nil || r != orderflow.Accepted {
					return fmt.Errorf("record %s: %v, %v", ids[i], r, err)
				}
				if n, err := s.ApplyCallbacks(ctx, ids[i]); err != nil || n != 1 {
					return fmt.Errorf("apply %s: %d, %v", ids[i], n, err)
				}
				return nil
			})
			b.StopTimer()
			after := s.Stats()
			commits := float64(after.Commits - before.Commits)
			writes := float64(after.Writes - before.Writes)
			b.ReportMetric(commits/writes, "commits/write")
			b.ReportMetric(commits/float64(b.N), "commits/callback")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "callbacks/s")
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
			// Totals since Open, setup included: what an fsync count taken
			// with strace over the whole run compares with.
			b.Logf("N=%d: store totals %d writes, %d commits, largest batch %d",
				b.N, after.Writes, after.Commits, after.MaxBatch)
		})
	}
}

// parallel calls f(0..n-1) from the given number of goroutines and fails b
// on the first error.
func parallel(b *testing.B, goroutines, n int, f func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || failed.Load() != nil {
					return
				}
				if err := f(i); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}
