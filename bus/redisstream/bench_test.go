package redisstream_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/bus/redisstream"
)

// BenchmarkBus publishes b.N events of 300 B (in batches of 100, as the
// relay does) while consumers of one group handle them with a no-op handler,
// acknowledgement after success and dedup markers on; it reports msgs/s
// end to end. bench/peers/bus runs the same against peer libraries.
func BenchmarkBus(b *testing.B) {
	for _, consumers := range []int{1, 4} {
		b.Run(fmt.Sprintf("consumers=%d", consumers), func(b *testing.B) {
			rdb := MustClient(b)
			cfg := redisstream.Config{Prefix: MustPrefix(b, rdb), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			bus := redisstream.New(rdb, cfg)
			payload := make([]byte, 300)
			evs := make([]orderflow.Event, b.N)
			for i := range evs {
				evs[i] = orderflow.Event{ID: fmt.Sprintf("evt_%d", i), Type: orderflow.EventOrderCreated,
					OrderID: fmt.Sprintf("ord_%d", i%10000), Payload: payload, CreatedAt: time.Now()}
			}
			var handled atomic.Int64
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{}, consumers)
			for i := range consumers {
				c := cfg
				c.Consumer = fmt.Sprintf("b%d", i)
				cb := redisstream.New(rdb, c)
				go func() {
					defer func() { done <- struct{}{} }()
					_ = cb.Consume(ctx, "bench", func(context.Context, orderflow.Delivery) error {
						handled.Add(1)
						return nil
					})
				}()
			}
			b.ResetTimer()
			for i := 0; i < len(evs); i += 100 {
				if err := bus.Publish(ctx, evs[i:min(i+100, len(evs))]); err != nil {
					b.Fatal(err)
				}
			}
			for handled.Load() < int64(b.N) {
				time.Sleep(100 * time.Microsecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			cancel()
			for range consumers {
				<-done
			}
		})
	}
}
