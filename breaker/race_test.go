package breaker_test

import (
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/breaker"
)

// Many goroutines use one breaker on the real clock while it flips between
// states; run with -race. Transitions must form one unbroken chain, delivered
// in order, and the breaker must have flipped.
func TestConcurrentFlipping(t *testing.T) {
	var (
		mu    sync.Mutex
		chain []breaker.State
		bad   []string
	)
	b := breaker.New(breaker.Config{
		Window: 100 * time.Millisecond, MinVolume: 20, ConsecutiveFailures: 5,
		MinOpen: time.Millisecond, MaxOpen: 4 * time.Millisecond, Probes: 2,
		OnStateChange: func(from, to breaker.State, s breaker.Snapshot) {
			mu.Lock()
			defer mu.Unlock()
			prev := breaker.Closed
			if len(chain) > 0 {
				prev = chain[len(chain)-1]
			}
			if from != prev || s.State != to {
				bad = append(bad, from.String()+"→"+to.String()+" after "+prev.String())
			}
			chain = append(chain, to)
		},
	})

	const workers, runFor = 8, 200 * time.Millisecond
	begin := time.Now()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // a reader, as a metrics scraper would be
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = b.Snapshot()
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	var workersWG sync.WaitGroup
	for w := range workers {
		workersWG.Add(1)
		go func() {
			defer workersWG.Done()
			for i := 0; time.Since(begin) < runFor; i++ {
				tk, err := b.Allow()
				if err != nil {
					time.Sleep(20 * time.Microsecond)
					continue
				}
				var cerr error
				// Workers alternate failing and healthy phases of 10ms.
				if (int(time.Since(begin)/(10*time.Millisecond))+w)%2 == 0 && i%4 != 0 {
					cerr = errBoom
				}
				if i%50 == 0 {
					time.Sleep(50 * time.Microsecond)
				}
				tk.Done(cerr, time.Duration(i%7)*time.Millisecond)
			}
		}()
	}
	workersWG.Wait()
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("broken transition chain: %v", bad)
	}
	if len(chain) < 2 {
		t.Fatalf("breaker made %d transitions, want it to flip", len(chain))
	}
	t.Logf("%d transitions", len(chain))
}

// However many goroutines ask at once, a half-open breaker admits exactly
// Probes calls.
func TestConcurrentProbesExact(t *testing.T) {
	for range 20 {
		h := newHarness(t, breaker.Config{Probes: 3})
		h.open()
		h.advance(2 * time.Second)
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			admitted []breaker.Ticket
		)
		start := make(chan struct{})
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range 10 {
					if tk, err := h.b.Allow(); err == nil {
						mu.Lock()
						admitted = append(admitted, tk)
						mu.Unlock()
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(admitted) != 3 {
			t.Fatalf("%d probes admitted concurrently, want exactly 3", len(admitted))
		}
		for _, tk := range admitted {
			tk.Done(nil, time.Millisecond)
		}
		h.wantState(breaker.Closed, breaker.ReasonProbesSucceeded)
	}
}
