package sqlbus_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/bus/bustest"
	"github.com/orderflow/orderflow/bus/sqlbus"
	"github.com/orderflow/orderflow/store/sqlite"
	"github.com/orderflow/orderflow/store/storetest"
)

// handlers are the benchmarked handlers: no work at all, and 1 ms of
// waiting, about what a callback over loopback costs.
var handlers = []struct {
	name string
	work time.Duration
}{{"noop", 0}, {"sleep1ms", time.Millisecond}}

// BenchmarkDrain measures events/s through the bus with Concurrency 64 and
// the default Config. ns/op is the time per event; the run ends when the
// last of b.N events was handled.
//
// mode=live: the consumer is running (held at a gate) while the b.N events
// are committed; the timer starts when the gate opens. That is the steady
// state: events committed after the group started.
// mode=backlog: the b.N events were committed before the consumer started,
// as after a restart; the first delivery of each is then counted durably
// before it begins (the crash-loop guard), which this mode includes.
func BenchmarkDrain(b *testing.B) {
	for _, mode := range []string{"live", "backlog"} {
		for _, h := range handlers {
			b.Run("mode="+mode+"/handler="+h.name, func(b *testing.B) { drain(b, mode == "live", h.work) })
		}
	}
}

func drain(b *testing.B, live bool, work time.Duration) {
	ctx := context.Background()
	st := MustOpen(b)
	publishAll := func() {
		evs := bustest.Events("o", b.N, max(b.N/4, 1))
		for len(evs) > 0 {
			n := min(len(evs), 1000)
			if err := publish(ctx, st, evs[:n]...); err != nil {
				b.Fatal(err)
			}
			evs = evs[n:]
		}
	}
	if !live {
		publishAll()
	}
	bus := sqlbus.New(st, sqlbus.Config{Concurrency: 64})
	var handled atomic.Int64
	gate, done, stopped := make(chan struct{}), make(chan struct{}), make(chan struct{})
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		_ = bus.Consume(cctx, "bench", func(context.Context, orderflow.Delivery) error {
			<-gate
			if work > 0 {
				time.Sleep(work)
			}
			if handled.Add(1) == int64(b.N) {
				close(done)
			}
			return nil
		})
		close(stopped)
	}()
	if live {
		publishAll()
		bus.Notify()
	}
	before, polls := st.Stats(), bus.Stats().Polls
	b.ResetTimer()
	start := time.Now()
	close(gate)
	<-done
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-stopped
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(st.Stats().Commits-before.Commits)/float64(b.N), "commits/event")
	b.ReportMetric(float64(bus.Stats().Polls-polls)/float64(b.N), "polls/event")
}

// BenchmarkPipeline measures the embedded path as the service runs it:
// 64 writers create orders (order row and order.created event in one
// transaction, then Notify) while one group consumes them with Concurrency
// 64, sharing the store's group commit. It reports events/s from the first
// create to the last delivery, and the latency from an order's commit to its
// delivery (p50, p99).
func BenchmarkPipeline(b *testing.B) {
	for _, h := range handlers {
		b.Run("handler="+h.name, func(b *testing.B) {
			ctx := context.Background()
			st := MustOpen(b)
			bus := sqlbus.New(st, sqlbus.Config{Concurrency: 64})
			lat := make([]time.Duration, b.N)
			committed := make([]atomic.Int64, b.N) // unix nanos of each commit
			var handled atomic.Int64
			done := make(chan struct{})
			cctx, cancel := context.WithCancel(ctx)
			stopped := make(chan struct{})
			go func() {
				_ = bus.Consume(cctx, "bench", func(_ context.Context, d orderflow.Delivery) error {
					if h.work > 0 {
						time.Sleep(h.work)
					}
					var i int
					fmt.Sscanf(d.OrderID, "o%d", &i)
					for committed[i].Load() == 0 { // delivered before CreateOrder returned
						time.Sleep(10 * time.Microsecond)
					}
					lat[i] = time.Duration(time.Now().UnixNano() - committed[i].Load())
					if handled.Add(1) == int64(b.N) {
						close(done)
					}
					return nil
				})
				close(stopped)
			}()
			b.ResetTimer()
			start := time.Now()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						id := fmt.Sprintf("o%d", i)
						if err := create(ctx, st, id); err != nil {
							b.Error(err)
							return
						}
						committed[i].Store(time.Now().UnixNano())
						bus.Notify()
					}
				}()
			}
			wg.Wait()
			<-done
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			<-stopped
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// create writes an order and its order.created event, as the order service
// does, retrying when the store sheds load.
func create(ctx context.Context, st *sqlite.Store, id string) error {
	o := storetest.NewOrder(id, "u"+id, time.Now())
	ev := storetest.NewEvent(id)
	ev.CreatedAt = time.Now()
	for {
		_, _, err := st.CreateOrder(ctx, o, ev, nil)
		if orderflow.ErrorCode(err) != orderflow.EResourceExhausted {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}
