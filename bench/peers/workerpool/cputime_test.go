package workerpool_test

import (
	"testing"

	"golang.org/x/sys/unix"
)

// processCPU returns the CPU time this process has used, in nanoseconds.
func processCPU(tb testing.TB) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		tb.Fatalf("clock_gettime: %v", err)
	}
	return ts.Nano()
}

// threadCPU returns the CPU time of the calling OS thread, in nanoseconds.
func threadCPU() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

// cpuMeter reports CPU nanoseconds per op beside the wall time. On a machine
// shared with other busy processes, wall time mostly measures how much CPU we
// were given; CPU time per task measures what the pool itself costs (including
// idle spinning of the Go scheduler, which is a real cost too).
type cpuMeter struct {
	b     *testing.B
	start int64
}

func startCPU(b *testing.B) cpuMeter { return cpuMeter{b, processCPU(b)} }

func (m cpuMeter) stop() {
	used := processCPU(m.b) - m.start
	m.b.ReportMetric(float64(used)/float64(m.b.N), "cpu-ns/op")
}
