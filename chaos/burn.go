package chaos

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// burnSlice is the period of the duty cycle: busy for share×slice, asleep
// for the rest. 10 ms is long against the cost of a timer wake-up and short
// against a scrape or a latency percentile window, so the load looks steady.
const burnSlice = 10 * time.Millisecond

// burner is one CPU burn: a goroutine owned by the Injector, stopped by
// stop (Set, Close) or by its own deadline.
type burner struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startBurner(share float64, d time.Duration, log *slog.Logger) *burner {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	b := &burner{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		defer cancel()
		burn(ctx, share)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			log.Info("chaos cpu burn ended", slog.Float64("share", share), slog.Duration("duration", d))
		}
	}()
	return b
}

func (b *burner) stop() {
	b.cancel()
	<-b.done
}

func (b *burner) finished() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// burn spins for share of every slice and sleeps for the rest, until ctx
// ends. The busy part is wall time, not CPU time: when the machine is
// saturated the burner gets less than its share, like any other tenant.
func burn(ctx context.Context, share float64) {
	busy := time.Duration(share * float64(burnSlice))
	idle := burnSlice - busy
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		for end := time.Now().Add(busy); time.Now().Before(end); {
			// Spin. time.Now is a vDSO call: cheap, and it keeps the loop
			// preemptible without help from the scheduler.
		}
		if idle <= 0 {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		timer.Reset(idle)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}
