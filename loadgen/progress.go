package loadgen

import (
	"context"
	"fmt"
	"os"
	"time"
)

// IsTerminal reports whether w is a character device (a terminal), where a
// progress line may be rewritten in place with \r; into a file or a pipe
// each update is a line of its own.
func IsTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// printProgress writes a progress line every ProgressEvery until ctx ends.
func (r *runner) printProgress(ctx context.Context) {
	start := time.Now()
	every(ctx, r.cfg.ProgressEvery, func() {
		line := formatProgress(time.Since(start), r.col.progress(), r.watch.active())
		if r.cfg.TTY {
			// Pad so a shorter line fully covers the one before.
			fmt.Fprintf(r.cfg.Progress, "\r%-100s", line)
		} else {
			fmt.Fprintln(r.cfg.Progress, line)
		}
	})
}

// every calls f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f()
	}
}

func formatProgress(elapsed time.Duration, p progress, pending int) string {
	s := elapsed.Seconds()
	return fmt.Sprintf("%6.1fs  sent %d (%.0f/s)  dropped %d  created %d  failed %d  decided %d (%.0f/s)  pending %d  p99 %s  errors %d",
		s, p.sent, float64(p.sent)/s, p.dropped, p.created, p.failed, p.decided, float64(p.decided)/s,
		pending, p.p99.Round(100*time.Microsecond), p.errors)
}
