package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/store/postgres/pgtest"
	"github.com/orderflow/orderflow/store/storetest"
)

// BenchmarkCallbackPath is store/sqlite's benchmark of the same name on
// PostgreSQL: one op is one new risk.decided callback recorded (committed)
// and then applied (another commit), by 1, 16 and 64 concurrent goroutines,
// the way HTTP handlers and the apply pool drive the store. The orders exist
// before the clock starts.
//
// conns is the pool size (pool_max_conns; pgxpool's default on this machine
// is 4): goroutines beyond it wait for a connection, and it bounds how many
// commits PostgreSQL can fold into one WAL flush.
//
// Metrics: callbacks/s; p50-ms and p99-ms, the latency of one callback
// (record + apply) as its goroutine saw it; retries/callback, transactions
// run again after a serialization failure; wal-syncs/callback, WAL fsyncs
// of the whole server (pg_stat_wal) per callback, counted around the timed
// part, so anything else the server did meanwhile is counted too: an upper
// bound, meaningful only on an otherwise idle server.
func BenchmarkCallbackPath(b *testing.B) {
	for _, tc := range []struct{ writers, conns int }{
		{1, 0}, {16, 0}, {64, 0}, {16, 16}, {64, 16},
	} {
		name := fmt.Sprintf("writers=%d", tc.writers)
		if tc.conns > 0 {
			name += fmt.Sprintf("/conns=%d", tc.conns)
		}
		b.Run(name, func(b *testing.B) {
			u := pgtest.FreshURL(b)
			if tc.conns > 0 {
				u += fmt.Sprintf("&pool_max_conns=%d", tc.conns)
			}
			ctx := context.Background()
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = fmt.Sprintf("ord_%d", i)
			}
			// The orders are made through a store of their own, closed
			// before the count starts: a backend reports its WAL
			// statistics lazily, but always when it exits.
			setup := mustOpenURL(b, u)
			parallel(b, 16, len(ids), func(i int) error {
				_, _, err := setup.CreateOrder(ctx, storetest.NewOrder(ids[i], "u_1", time.Now()), storetest.NewEvent(ids[i]), nil)
				return err
			})
			setup.Close()
			// Open's migration check commits a few transactions of its
			// own that the count may include: a few syncs in all.
			s := mustOpenURL(b, u)
			retries := s.Retries()
			syncs := walSyncs(b)
			took := make([]time.Duration, b.N)
			b.ResetTimer()
			parallel(b, tc.writers, len(ids), func(i int) error {
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
			retries = s.Retries() - retries
			// Closing the pool ends its backends, which flushes their WAL
			// statistics; a new connection then reads them.
			s.Close()
			syncs = walSyncs(b) - syncs
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "callbacks/s")
			b.ReportMetric(float64(retries)/float64(b.N), "retries/callback")
			b.ReportMetric(float64(syncs)/float64(b.N), "wal-syncs/callback")
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// walSyncs returns the server's count of WAL fsyncs so far.
func walSyncs(b *testing.B) int64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.BaseURL())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, `SELECT wal_sync FROM pg_stat_wal`).Scan(&n); err != nil {
		if strings.Contains(err.Error(), "pg_stat_wal") {
			return 0 // before PostgreSQL 14
		}
		b.Fatal(err)
	}
	return n
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
