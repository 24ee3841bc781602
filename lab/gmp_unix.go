//go:build unix

package lab

import (
	"fmt"
	"runtime/pprof"
	"syscall"
	"time"
)

// observeSyscallHandoff blocks n goroutines in read(2) on pipes opened
// without O_NONBLOCK — a real blocking system call, not the netpoller — and,
// while they are blocked, runs Go code for hold on the main goroutine.
// Callers set GOMAXPROCS=1: the main goroutine can then only run if the
// blocked ones released the one P.
func observeSyscallHandoff(n int, hold time.Duration) (o handoff, err error) {
	o.blockers = n
	fds := make([][2]int, n)
	for i := range fds {
		if err := syscall.Pipe(fds[i][:]); err != nil {
			return o, fmt.Errorf("pipe: %w", err)
		}
	}
	defer func() {
		for _, fd := range fds {
			syscall.Close(fd[0])
			syscall.Close(fd[1])
		}
	}()
	threads0 := pprof.Lookup("threadcreate").Count()
	entered := make(chan time.Time, n)
	done := make(chan struct{}, n)
	for i := range n {
		go func() { // owned: ends when the write below unblocks its read
			defer func() { done <- struct{}{} }()
			gmpBlock(fds[i][0], entered)
		}()
	}
	var lastEntered time.Time
	for range n {
		lastEntered = <-entered
	}
	o.resumeDelay = time.Since(lastEntered)
	start := time.Now()
	for time.Since(start) < hold {
		for range 1024 {
			o.progress++
		}
	}
	o.inSyscall = goroutinesInSyscall("lab.gmpBlock")
	o.osThreads = osThreads()
	o.gomaxprocs = readGOMAXPROCSMetric()
	for _, fd := range fds {
		if _, err := syscall.Write(fd[1], []byte{1}); err != nil {
			return o, fmt.Errorf("write: %w", err)
		}
	}
	for range n {
		<-done
	}
	o.threadsDelta = pprof.Lookup("threadcreate").Count() - threads0
	return o, nil
}

// gmpBlock is named so that a goroutine dump can find its callers. The
// timestamp is taken just before the read: the gap to the main goroutine
// running is the P hand-off.
//
//go:noinline
func gmpBlock(fd int, entered chan<- time.Time) {
	var b [1]byte
	entered <- time.Now()
	for {
		_, err := syscall.Read(fd, b[:])
		if err != syscall.EINTR {
			return
		}
	}
}
