package workerpool_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/workerpool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// mustClose closes p with a generous bound; a hang here is a bug the test
// binary's -timeout would otherwise report far from its cause.
func mustClose(tb testing.TB, p *workerpool.Pool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		tb.Fatalf("Close: %v", err)
	}
}

func TestSubmitRunsEveryTask(t *testing.T) {
	tests := []struct {
		name             string
		workers, queue   int
		tasks, producers int
	}{
		{"Defaults", 0, 0, 1000, 4},
		{"OneWorkerOneSlot", 1, 1, 200, 3},
		{"ManyWorkersSmallQueue", 64, 2, 5000, 8},
		{"QueueLargerThanLoad", 4, 10000, 1000, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := workerpool.New(workerpool.Config{Workers: tt.workers, QueueSize: tt.queue})
			var ran atomic.Int64
			var wg sync.WaitGroup
			for range tt.producers {
				wg.Go(func() {
					for range tt.tasks / tt.producers {
						if err := p.Submit(context.Background(), func(context.Context) { ran.Add(1) }); err != nil {
							t.Errorf("Submit: %v", err)
						}
					}
				})
			}
			wg.Wait()
			mustClose(t, p)
			want := int64(tt.tasks / tt.producers * tt.producers)
			if got := ran.Load(); got != want {
				t.Fatalf("ran %d tasks, want %d", got, want)
			}
			st := p.Stats()
			if st.Submitted != want || st.Completed != want || st.Busy != 0 || st.QueueDepth != 0 || st.Rejected != 0 {
				t.Fatalf("Stats = %+v, want Submitted=Completed=%d and nothing busy, queued or rejected", st, want)
			}
		})
	}
}

// blocked returns a pool whose only worker is stuck in a task until release is
// called, with its queue filled to capacity.
func blocked(t *testing.T, queue int) (p *workerpool.Pool, release func()) {
	t.Helper()
	p = workerpool.New(workerpool.Config{Workers: 1, QueueSize: queue})
	gate := make(chan struct{})
	started := make(chan struct{})
	if err := p.TrySubmit(func(context.Context) { close(started); <-gate }); err != nil {
		t.Fatalf("TrySubmit: %v", err)
	}
	<-started
	for range queue {
		if err := p.TrySubmit(func(context.Context) {}); err != nil {
			t.Fatalf("TrySubmit filling the queue: %v", err)
		}
	}
	var once sync.Once
	return p, func() { once.Do(func() { close(gate) }) }
}

func TestRejections(t *testing.T) {
	tests := []struct {
		name   string
		submit func(p *workerpool.Pool) error
		want   error
	}{
		{"TrySubmitErrFull", func(p *workerpool.Pool) error {
			return p.TrySubmit(func(context.Context) {})
		}, workerpool.ErrFull},
		{"SubmitCanceled", func(p *workerpool.Pool) error {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(10*time.Millisecond, cancel)
			return p.Submit(ctx, func(context.Context) {})
		}, context.Canceled},
		{"SubmitDeadlineExceeded", func(p *workerpool.Pool) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			return p.Submit(ctx, func(context.Context) {})
		}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, release := blocked(t, 2)
			err := tt.submit(p)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			st := p.Stats()
			if st.Rejected != 1 || st.QueueDepth != 2 || st.Busy != 1 || st.Submitted != 3 {
				t.Fatalf("Stats = %+v, want Rejected=1 QueueDepth=2 Busy=1 Submitted=3", st)
			}
			release()
			mustClose(t, p)
		})
	}
}

func TestErrClosed(t *testing.T) {
	p := workerpool.New(workerpool.Config{Workers: 2})
	mustClose(t, p)
	mustClose(t, p) // idempotent
	if err := p.Submit(context.Background(), func(context.Context) {}); !errors.Is(err, workerpool.ErrClosed) {
		t.Fatalf("Submit after Close = %v, want ErrClosed", err)
	}
	if err := p.TrySubmit(func(context.Context) {}); !errors.Is(err, workerpool.ErrClosed) {
		t.Fatalf("TrySubmit after Close = %v, want ErrClosed", err)
	}
}

func TestCloseWakesBlockedSubmit(t *testing.T) {
	p, release := blocked(t, 1)
	errc := make(chan error, 1)
	go func() { errc <- p.Submit(context.Background(), func(context.Context) {}) }()
	closed := make(chan error, 1)
	go func() { closed <- p.Close(context.Background()) }()
	// The blocked Submit either got in before Close or sees it; either way it
	// returns without anyone cancelling its context.
	err := <-errc
	if err != nil && !errors.Is(err, workerpool.ErrClosed) {
		t.Fatalf("Submit racing Close = %v, want nil or ErrClosed", err)
	}
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestCloseDrainsQueue(t *testing.T) {
	p, release := blocked(t, 100)
	var ran atomic.Int64
	release()
	// Fill again behind the released worker, then close at once.
	for range 100 {
		if err := p.Submit(context.Background(), func(context.Context) {
			time.Sleep(10 * time.Microsecond)
			ran.Add(1)
		}); err != nil {
			t.Fatalf("Submit: %v", err)
		}
	}
	mustClose(t, p)
	if got := ran.Load(); got != 100 {
		t.Fatalf("Close returned with %d of 100 queued tasks run", got)
	}
}

func TestCloseTimeoutCancelsTasks(t *testing.T) {
	p := workerpool.New(workerpool.Config{Workers: 1, QueueSize: 4})
	started := make(chan struct{})
	var sawCancel, queuedCancelled atomic.Bool
	if err := p.Submit(context.Background(), func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		sawCancel.Store(true)
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.Submit(context.Background(), func(ctx context.Context) {
		queuedCancelled.Store(ctx.Err() != nil)
	}); err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want DeadlineExceeded", err)
	}
	<-p.Done()
	if !sawCancel.Load() || !queuedCancelled.Load() {
		t.Fatalf("running task saw cancel: %v, queued task called with cancelled ctx: %v", sawCancel.Load(), queuedCancelled.Load())
	}
	if st := p.Stats(); st.Completed != 2 {
		t.Fatalf("Completed = %d, want 2: every accepted task is called once", st.Completed)
	}
}

// TestNestedSubmitNoDeadlock fills a one-worker pool from inside its own task;
// without caller-runs the worker would wait for itself forever. The bound is
// the test binary's -timeout, not a timing assertion.
func TestNestedSubmitNoDeadlock(t *testing.T) {
	tests := []struct {
		name  string
		ctxOf func(taskCtx context.Context) (context.Context, context.CancelFunc)
	}{
		{"TaskContext", func(c context.Context) (context.Context, context.CancelFunc) { return c, func() {} }},
		{"DerivedContext", func(c context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(c, time.Hour)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := workerpool.New(workerpool.Config{Workers: 1, QueueSize: 1})
			const want = 1 + 3 + 9 + 27 + 81
			var ran atomic.Int64
			done := make(chan struct{})
			var fanout func(depth int) func(context.Context)
			fanout = func(depth int) func(context.Context) {
				return func(taskCtx context.Context) {
					if ran.Add(1) == want {
						close(done)
					}
					if depth == 0 {
						return
					}
					ctx, cancel := tt.ctxOf(taskCtx)
					defer cancel()
					for range 3 {
						if err := p.Submit(ctx, fanout(depth-1)); err != nil {
							t.Errorf("nested Submit: %v", err)
						}
					}
				}
			}
			if err := p.Submit(context.Background(), fanout(4)); err != nil {
				t.Fatal(err)
			}
			<-done // every task ran: Close now has nothing left to refuse
			mustClose(t, p)
			st := p.Stats()
			if ran.Load() != want || st.Completed != want || st.CallerRuns == 0 {
				t.Fatalf("ran %d, Stats %+v; want %d run, some caller-runs", ran.Load(), st, want)
			}
		})
	}
}

// TestSubmitRacingClose checks that every task whose Submit returned nil runs
// exactly once, whatever the interleaving with Close; run it with -race.
func TestSubmitRacingClose(t *testing.T) {
	for range 50 {
		p := workerpool.New(workerpool.Config{Workers: 4, QueueSize: 8})
		var accepted, ran atomic.Int64
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if i%2 == 0 {
					time.AfterFunc(time.Duration(i)*50*time.Microsecond, cancel)
				}
				for {
					var err error
					if i%3 == 0 {
						err = p.TrySubmit(func(context.Context) { ran.Add(1) })
					} else {
						err = p.Submit(ctx, func(context.Context) { ran.Add(1) })
					}
					switch {
					case err == nil:
						accepted.Add(1)
					case errors.Is(err, workerpool.ErrClosed):
						return
					case errors.Is(err, workerpool.ErrFull), errors.Is(err, context.Canceled):
						if ctx.Err() != nil {
							return
						}
					default:
						t.Errorf("unexpected error %v", err)
						return
					}
				}
			})
		}
		time.Sleep(200 * time.Microsecond)
		mustClose(t, p)
		wg.Wait()
		if accepted.Load() != ran.Load() {
			t.Fatalf("accepted %d tasks, ran %d", accepted.Load(), ran.Load())
		}
		if st := p.Stats(); st.Submitted != accepted.Load() || st.Completed != accepted.Load() {
			t.Fatalf("Stats %+v, accepted %d", st, accepted.Load())
		}
	}
}

func TestPanicIsRecovered(t *testing.T) {
	tests := []struct {
		name  string
		value any
		check func(recovered any) bool
	}{
		{"String", "boom", func(r any) bool { return r == "boom" }},
		{"Error", errors.New("bad"), func(r any) bool { e, ok := r.(error); return ok && e.Error() == "bad" }},
		// Since Go 1.21 panic(nil) recovers as *runtime.PanicNilError; it
		// must count as a panic, not pass for a normal return.
		{"Nil", nil, func(r any) bool { _, ok := r.(*runtime.PanicNilError); return ok }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var recovered atomic.Value
			p := workerpool.New(workerpool.Config{Workers: 1, OnPanic: func(r any) { recovered.Store(&r) }})
			var after atomic.Bool
			if err := p.Submit(context.Background(), func(context.Context) { panic(tt.value) }); err != nil {
				t.Fatal(err)
			}
			if err := p.Submit(context.Background(), func(context.Context) { after.Store(true) }); err != nil {
				t.Fatal(err)
			}
			mustClose(t, p)
			if !after.Load() {
				t.Fatal("the worker died with the panicking task")
			}
			got, _ := recovered.Load().(*any)
			if got == nil || !tt.check(*got) {
				t.Fatalf("OnPanic got %v", got)
			}
			if st := p.Stats(); st.Panics != 1 || st.Completed != 2 {
				t.Fatalf("Stats %+v, want Panics=1 Completed=2", st)
			}
		})
	}
}

func TestGoexitKeepsWorkerCount(t *testing.T) {
	p := workerpool.New(workerpool.Config{Workers: 1})
	if err := p.Submit(context.Background(), func(context.Context) { runtime.Goexit() }); err != nil {
		t.Fatal(err)
	}
	var ran atomic.Bool
	if err := p.Submit(context.Background(), func(context.Context) { ran.Store(true) }); err != nil {
		t.Fatal(err)
	}
	mustClose(t, p)
	if !ran.Load() {
		t.Fatal("the task after a Goexit never ran")
	}
}

func TestOnWait(t *testing.T) {
	var calls atomic.Int64
	var maxWait atomic.Int64
	p := workerpool.New(workerpool.Config{Workers: 1, OnWait: func(d time.Duration) {
		calls.Add(1)
		if d < 0 {
			t.Errorf("negative queue wait %v", d)
		}
		if int64(d) > maxWait.Load() {
			maxWait.Store(int64(d))
		}
	}})
	for range 10 {
		if err := p.Submit(context.Background(), func(context.Context) { time.Sleep(time.Millisecond) }); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, p)
	if calls.Load() != 10 {
		t.Fatalf("OnWait called %d times, want 10", calls.Load())
	}
	if maxWait.Load() < int64(time.Millisecond) {
		t.Fatalf("longest wait %v; the last of 10 one-millisecond tasks waited for nine", time.Duration(maxWait.Load()))
	}
}

func TestConcurrentClose(t *testing.T) {
	p := workerpool.New(workerpool.Config{Workers: 3})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { mustClose(t, p) })
	}
	wg.Wait()
}

func TestCloseFromTask(t *testing.T) {
	p := workerpool.New(workerpool.Config{Workers: 2})
	errc := make(chan error, 1)
	if err := p.Submit(context.Background(), func(ctx context.Context) { errc <- p.Close(ctx) }); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Close from a task = %v, want nil", err)
	}
	<-p.Done() // bounded by the test timeout: a deadlock shows up here
	if err := p.TrySubmit(func(context.Context) {}); !errors.Is(err, workerpool.ErrClosed) {
		t.Fatalf("TrySubmit after Close from a task = %v, want ErrClosed", err)
	}
}

// TestStatsCountersMonotonic reads Stats while tasks flow: exported as
// Prometheus counters, Submitted and Completed must never go down.
func TestStatsCountersMonotonic(t *testing.T) {
	p := workerpool.New(workerpool.Config{Workers: 8, QueueSize: 4})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = p.Submit(context.Background(), func(context.Context) {})
			}
		})
	}
	var prev workerpool.Stats
	for range 20000 {
		st := p.Stats()
		if st.Submitted < prev.Submitted || st.Completed < prev.Completed {
			t.Fatalf("counters went down: %+v after %+v", st, prev)
		}
		if st.Completed > st.Submitted {
			t.Fatalf("more completed than submitted: %+v", st)
		}
		prev = st
	}
	close(stop)
	wg.Wait()
	mustClose(t, p)
	if st := p.Stats(); st.Submitted != st.Completed {
		t.Fatalf("at rest: %+v, want Submitted == Completed", st)
	}
}
