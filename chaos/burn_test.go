package chaos_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orderflow/orderflow/chaos"
)

// processCPU is the user+system CPU time of this process so far.
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestCPUBurnUsesCPUAndStopsOnClose(t *testing.T) {
	inj := newInjector(t, 1)
	mustSet(t, inj, chaos.Settings{CPU: &chaos.CPUBurn{Share: 0.3, Duration: time.Minute}})
	if !inj.Burning() {
		t.Fatal("not burning after Set")
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(inj.Collector())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP orderflow_chaos_cpu_burn_target_ratio Target share of one core that chaos is burning now (0 when off).
# TYPE orderflow_chaos_cpu_burn_target_ratio gauge
orderflow_chaos_cpu_burn_target_ratio 0.3
`), "orderflow_chaos_cpu_burn_target_ratio"); err != nil {
		t.Error(err)
	}

	cpu0, wall0 := processCPU(t), time.Now()
	time.Sleep(300 * time.Millisecond)
	share := float64(processCPU(t)-cpu0) / float64(time.Since(wall0))
	t.Logf("measured CPU share %.2f of one core for a 0.3 target", share)
	// Deliberately wide: the machine is shared, so this only tells a burner
	// that runs from one that does not, and one that obeys its share from
	// one that spins flat out.
	if share < 0.03 || share > 0.9 {
		t.Errorf("CPU share = %.2f, want roughly 0.3", share)
	}

	inj.Close() // goleak in TestMain proves the goroutine is gone
	if inj.Burning() {
		t.Error("still burning after Close")
	}
}

func TestCPUBurnEnds(t *testing.T) {
	t.Run("OnExpiry", func(t *testing.T) {
		var logs syncBuffer
		inj := chaos.New(chaos.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		defer inj.Close()
		mustSet(t, inj, chaos.Settings{CPU: &chaos.CPUBurn{Share: 0.1, Duration: 30 * time.Millisecond}})
		if until := inj.Settings().CPU.Until; until.IsZero() {
			t.Error("Settings().CPU.Until not set")
		}
		deadline := time.Now().Add(10 * time.Second)
		for inj.Burning() {
			if time.Now().After(deadline) {
				t.Fatal("burn did not end after its duration")
			}
			time.Sleep(5 * time.Millisecond)
		}
		inj.Close() // waits for the goroutine, so its log line is written
		if !strings.Contains(logs.String(), "chaos cpu burn ended") {
			t.Errorf("no end-of-burn log in %q", logs.String())
		}
	})
	t.Run("OnNewSettings", func(t *testing.T) {
		inj := newInjector(t, 1)
		mustSet(t, inj, chaos.Settings{CPU: &chaos.CPUBurn{Share: 0.1, Duration: time.Minute}})
		mustSet(t, inj, chaos.Settings{})
		if inj.Burning() || inj.Settings().CPU != nil {
			t.Error("burn survived a Set without cpu")
		}
	})
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
