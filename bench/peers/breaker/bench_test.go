package breakerpeers_test

import (
	"sync/atomic"
	"testing"
	"time"

	kitex "github.com/bytedance/gopkg/cloud/circuitbreaker"
	"github.com/sony/gobreaker/v2"
	gozero "github.com/zeromicro/go-zero/core/breaker"
	"github.com/zeromicro/go-zero/core/logx"

	breakerpeers "github.com/orderflow/orderflow/bench/peers/breaker"
	"github.com/orderflow/orderflow/breaker"
)

// BenchmarkClosed measures the closed-state cost of one call — ask, then
// report a success — for each breaker, from b.RunParallel goroutines (run
// with -cpu 1,2). Each uses its cheapest API for the job.
func BenchmarkClosed(b *testing.B) {
	b.Run("impl=orderflow", func(b *testing.B) {
		br := breaker.New(breaker.Config{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				t, err := br.Allow()
				if err != nil {
					b.Fatal(err)
				}
				t.Done(nil, 5*time.Millisecond)
			}
		})
	})
	b.Run("impl=gobreaker", func(b *testing.B) {
		cb := gobreaker.NewCircuitBreaker[struct{}](breakerpeers.GoBreakerSettings())
		ok := func() (struct{}, error) { return struct{}{}, nil }
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := cb.Execute(ok); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("impl=gobreaker-twostep", func(b *testing.B) {
		cb := gobreaker.NewTwoStepCircuitBreaker[struct{}](breakerpeers.GoBreakerSettings())
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				done, err := cb.Allow()
				if err != nil {
					b.Fatal(err)
				}
				done(nil)
			}
		})
	})
	b.Run("impl=kitex", func(b *testing.B) {
		p, err := kitex.NewPanel(nil, breakerpeers.KitexOptions())
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !p.IsAllowed(breakerpeers.KitexKey) {
					b.Fatal("rejected")
				}
				p.Succeed(breakerpeers.KitexKey)
			}
		})
	})
	b.Run("impl=kitex-shardp", func(b *testing.B) {
		o := breakerpeers.KitexOptions()
		o.EnableShardP = true
		p, err := kitex.NewPanel(nil, o)
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !p.IsAllowed(breakerpeers.KitexKey) {
					b.Fatal("rejected")
				}
				p.Succeed(breakerpeers.KitexKey)
			}
		})
	})
	b.Run("impl=go-zero", func(b *testing.B) {
		logx.Disable() // its stat goroutine prints to stdout, into the benchmark output
		br := gozero.NewBreaker()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p, err := br.Allow()
				if err != nil {
					b.Fatal(err)
				}
				p.Accept()
			}
		})
	})
}

var sink int64

// BenchmarkCalibrate measures, in the same run, the two operations the
// closed path is made of on this machine: a monotonic clock read and an
// uncontended atomic add.
func BenchmarkCalibrate(b *testing.B) {
	base := time.Now()
	b.Run("op=clock-read", func(b *testing.B) {
		for range b.N {
			sink += int64(time.Since(base))
		}
	})
	b.Run("op=atomic-add", func(b *testing.B) {
		var n atomic.Int64
		for range b.N {
			n.Add(1)
		}
		sink += n.Load()
	})
}
