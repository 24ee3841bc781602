package workerpool_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/alitto/pond/v2"
	"github.com/panjf2000/ants/v2"

	"github.com/orderflow/orderflow/workerpool"
)

const (
	workers   = 64
	queueSize = 1024
	taskCost  = time.Microsecond
)

// spinIters is the number of spin iterations that take about taskCost on this
// machine, calibrated once in TestMain: time.Sleep would measure the timer,
// not the pool.
var spinIters int

// spin burns CPU for n iterations of an LCG; the result is returned so the
// compiler cannot drop the loop.
func spin(n int) uint64 {
	x := uint64(n)
	for range n {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

var calibrationSink uint64

// calibrate measures the spin loop in CPU time of the calling thread, not wall
// time: on a shared machine the wall clock also counts the time other
// processes held our CPU, which once made a "1 µs" task 0.2 µs long.
func calibrate() int {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const probe = 2_000_000
	best := int64(1 << 62)
	for range 5 {
		start := threadCPU()
		calibrationSink += spin(probe) // kept, or the compiler may drop the loop
		if d := threadCPU() - start; d < best {
			best = d
		}
	}
	return int(int64(probe) * int64(taskCost) / best)
}

func TestMain(m *testing.M) {
	spinIters = calibrate()
	fmt.Fprintf(os.Stderr, "spin: %d iterations ≈ %v\n", spinIters, taskCost)
	os.Exit(m.Run())
}

// runner is one pool under test. Each constructor receives the work and
// wraps it once in the pool's native task type, so no submit allocates a
// closure the real callers would not.
type runner interface {
	submit() error
	close()
}

type channelPool struct {
	tasks chan func()
	task  func()
	wg    sync.WaitGroup
}

func newChannelPool(work func()) runner {
	p := &channelPool{tasks: make(chan func(), queueSize), task: work}
	for range workers {
		p.wg.Go(func() {
			for t := range p.tasks {
				t()
			}
		})
	}
	return p
}
func (p *channelPool) submit() error { p.tasks <- p.task; return nil }
func (p *channelPool) close()        { close(p.tasks); p.wg.Wait() }

type ourPool struct {
	p      *workerpool.Pool
	task   func(context.Context)
	ctx    context.Context
	cancel context.CancelFunc
}

// newOurPool builds orderflow's pool; withCtx makes Submit use a cancellable
// context, as a request handler would, instead of context.Background().
func newOurPool(cfg workerpool.Config, withCtx bool) func(func()) runner {
	return func(work func()) runner {
		cfg.Workers, cfg.QueueSize = workers, queueSize
		o := ourPool{p: workerpool.New(cfg), task: func(context.Context) { work() }, ctx: context.Background(), cancel: func() {}}
		if withCtx {
			o.ctx, o.cancel = context.WithCancel(context.Background())
		}
		return o
	}
}
func (o ourPool) submit() error { return o.p.Submit(o.ctx, o.task) }
func (o ourPool) close()        { _ = o.p.Close(context.Background()); o.cancel() }

type antsPool struct {
	p    *ants.Pool
	task func()
}

func newAntsPool(work func()) runner {
	p, err := ants.NewPool(workers, ants.WithPreAlloc(true))
	if err != nil {
		panic(err)
	}
	return antsPool{p, work}
}
func (a antsPool) submit() error { return a.p.Submit(a.task) }
func (a antsPool) close()        { a.p.Release() }

type pondPool struct {
	p    pond.Pool
	task func()
}

func newPondPool(work func()) runner {
	return pondPool{pond.NewPool(workers, pond.WithQueueSize(queueSize)), work}
}
func (p pondPool) submit() error { return p.p.Go(p.task) }
func (p pondPool) close()        { p.p.StopAndWait() }

var impls = []struct {
	name string
	new  func(work func()) runner
}{
	{"channel", newChannelPool},
	{"orderflow", newOurPool(workerpool.Config{}, false)},
	{"orderflow-ctx", newOurPool(workerpool.Config{}, true)},
	{"orderflow-onwait", newOurPool(workerpool.Config{OnWait: func(time.Duration) {}}, false)},
	{"ants", newAntsPool},
	{"pond", newPondPool},
}

// BenchmarkSubmit measures ns per task: one goroutine submits b.N tasks to
// 64 workers and waits for the last to finish. task=1us is about one
// microsecond of CPU per task, the target workload: with 64 workers on few
// CPUs the queue stays full, so this is the throughput of the whole path
// (submit, hand-off, wake-up, run, account). task=0 is an empty task, which
// leaves only the pool's own overhead to measure.
func BenchmarkSubmit(b *testing.B) { benchPools(b, false) }

// BenchmarkSubmitParallel is BenchmarkSubmit with GOMAXPROCS submitters, the
// shape of HTTP handlers handing work to a shared pool.
func BenchmarkSubmitParallel(b *testing.B) { benchPools(b, true) }

func benchPools(b *testing.B, parallel bool) {
	for _, task := range []struct {
		name  string
		iters func() int
	}{
		{"1us", func() int { return spinIters }},
		{"0", func() int { return 0 }},
	} {
		for _, impl := range impls {
			b.Run("task="+task.name+"/impl="+impl.name, func(b *testing.B) {
				var wg sync.WaitGroup
				n := task.iters()
				r := impl.new(func() {
					if spin(n) == 42 {
						panic("unreachable in practice")
					}
					wg.Done()
				})
				defer r.close()
				b.ReportAllocs()
				b.ResetTimer()
				cpu := startCPU(b)
				wg.Add(b.N)
				if parallel {
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := r.submit(); err != nil {
								b.Error(err)
								wg.Done()
							}
						}
					})
				} else {
					for range b.N {
						if err := r.submit(); err != nil {
							b.Fatal(err)
						}
					}
				}
				wg.Wait()
				cpu.stop()
			})
		}
	}
}
