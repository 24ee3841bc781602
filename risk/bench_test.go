package risk_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/risk"
	"github.com/orderflow/orderflow/risk/synth"
)

// benchOrders are synthetic orders whose users, devices and amounts make the
// counters work as in production: 10,000 users, a few orders each.
var benchOrders = func() []orderflow.Order {
	os := synth.Generate(synth.Config{Seed: 9, Users: 10_000}, 1<<15)
	out := make([]orderflow.Order, len(os))
	for i := range os {
		out[i] = os[i].Order
	}
	return out
}()

// benchIDs are order ids, twice as many as benchOrders, so an id meets the
// same user again only 56 days of order time later: never a duplicate.
var benchIDs = func() []string {
	ids := make([]string, 2*len(benchOrders))
	for i := range ids {
		ids[i] = "ord_" + strconv.Itoa(i)
	}
	return ids
}()

// benchOrder returns the i-th benchmark order: the stream repeats every
// 32,768 orders, 28 days later each time, so the counters keep evicting
// and the users' windows look as in the stream.
func benchOrder(i int) orderflow.Order {
	o := benchOrders[i&(len(benchOrders)-1)]
	o.ID = benchIDs[i&(len(benchIDs)-1)]
	o.CreatedAt = o.CreatedAt.Add(time.Duration(i>>15) * 28 * 24 * time.Hour)
	return o
}

// processCPU is the CPU time this process has used. Reported per op beside
// wall time: on a shared machine wall time mostly says how much CPU we were
// given, CPU time what the code costs.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loopCPU runs body(i) in a b.Loop and reports allocations and cpu-ns/op.
func loopCPU(b *testing.B, body func(i int)) {
	b.ReportAllocs()
	start := processCPU(b)
	n := 0
	for b.Loop() {
		body(n)
		n++
	}
	b.ReportMetric(float64(processCPU(b)-start)/float64(n), "cpu-ns/op")
}

func benchAssessor(b *testing.B) *risk.Assessor {
	b.Helper()
	r, err := risk.NewRouter("bench", 5000)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	return &risk.Assessor{
		Counters: risk.NewMemoryCounters(risk.MemoryConfig{}),
		Router:   r, Champion: risk.V21(), Challenger: risk.V3(),
		Now: func() time.Time { return now },
	}
}

// BenchmarkAssess is the whole compute of one order: observe in the
// counters, extract, route, score both versions, decide.
func BenchmarkAssess(b *testing.B) {
	a := benchAssessor(b)
	ctx := context.Background()
	loopCPU(b, func(i int) {
		if _, err := a.Assess(ctx, benchOrder(i)); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkAssessParallel runs Assess from GOMAXPROCS goroutines over one
// Assessor, as the engine's workers do.
func BenchmarkAssessParallel(b *testing.B) {
	a := benchAssessor(b)
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := processCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Assess(ctx, benchOrder(int(next.Add(1)))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
}

func BenchmarkScore(b *testing.B) {
	f := risk.Features{LogAmount: 5.3, Orders1h: 2, Orders24h: 4, Devices24h: 2, PriorOrders: 6, AmountZ: 1.2, AgeHours: 300, Items: 3, LocalHour: 14}
	for _, s := range []risk.Scorer{risk.V21(), risk.V3()} {
		b.Run(s.Version(), func(b *testing.B) {
			sum := 0.0
			loopCPU(b, func(i int) {
				f.Orders24h = 1 + i&7 // vary the input, as real orders do
				sum += s.Score(f)
			})
			if sum < 0 {
				b.Fatal(sum)
			}
		})
	}
}

func BenchmarkObserve(b *testing.B) {
	c := risk.NewMemoryCounters(risk.MemoryConfig{})
	ctx := context.Background()
	loopCPU(b, func(i int) {
		o := benchOrder(i)
		if _, err := c.Observe(ctx, risk.Observation{OrderID: o.ID, UserID: o.UserID, DeviceID: o.DeviceID, AmountMinor: o.AmountMinor, At: o.CreatedAt}); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkExtract(b *testing.B) {
	s := risk.Snapshot{Orders1h: 1, Orders24h: 3, Devices24h: 1, FirstSeen: benchOrders[0].CreatedAt, PriorOrders: 4, MeanLogAmount: 9, StdLogAmount: 0.4}
	n := 0
	loopCPU(b, func(i int) {
		o := &benchOrders[i&(len(benchOrders)-1)]
		n += risk.Extract(o, s).Items
	})
	_ = n
}

func BenchmarkRouterBucket(b *testing.B) {
	r, err := risk.NewRouter("bench", 5000)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	loopCPU(b, func(i int) {
		if r.Challenger(benchOrders[i&(len(benchOrders)-1)].UserID) {
			n++
		}
	})
	_ = n
}
