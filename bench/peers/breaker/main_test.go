package breakerpeers_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Our adapters and tests must leave no goroutine behind (Kitex's panel is
// closed after each run). go-zero starts two process-wide goroutines from
// package init (signal handling and CPU stats) that nothing can stop; they
// are the only ones ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/zeromicro/go-zero/core/proc.init.1.func1"),
		goleak.IgnoreTopFunction("github.com/zeromicro/go-zero/core/stat.init.1.func1"),
	)
}
