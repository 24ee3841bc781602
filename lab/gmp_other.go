//go:build !unix

package lab

import (
	"errors"
	"time"
)

// observeSyscallHandoff needs blocking pipes, which this platform's syscall
// package does not offer the same way.
func observeSyscallHandoff(n int, hold time.Duration) (handoff, error) {
	return handoff{}, errors.New("gmp: the syscall hand-off experiment needs a unix system")
}
