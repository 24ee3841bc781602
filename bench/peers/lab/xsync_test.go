package peerlab_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	peerlab "github.com/orderflow/orderflow/bench/peers/lab"
	orderlab "github.com/orderflow/orderflow/lab"
)

// No goleak here: it is not in this module's go.mod, and the goroutines the
// sweep starts belong to package lab, whose own tests run under goleak.

func TestSyncMapXsyncQuick(t *testing.T) {
	e, ok := orderlab.Lookup("syncmap-xsync")
	if !ok {
		t.Fatal("syncmap-xsync not registered")
	}
	r, err := orderlab.RunOne(context.Background(), e, orderlab.Options{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "syncmap-xsync" || r.Claim == "" || r.Condition == "" || len(r.Measurements) == 0 {
		t.Errorf("incomplete result %+v", r)
	}
	if !strings.Contains(r.Table, "xsync.Map") {
		t.Errorf("table lacks xsync.Map:\n%s", r.Table)
	}
}

func TestImplsStoreLoad(t *testing.T) {
	for _, im := range peerlab.Impls() {
		t.Run(im.Name, func(t *testing.T) {
			m := im.New(16)
			m.Store(3, 3)
			if v, ok := m.Load(3); !ok || v != 3 {
				t.Errorf("Load(3) = %d, %v; want 3, true", v, ok)
			}
			if _, ok := m.Load(99); ok {
				t.Error("Load(99) found a value never stored")
			}
		})
	}
}

// BenchmarkMaps runs every contender under b.RunParallel at a few write
// ratios over 65536 keys; compare with benchstat (see docs/benchmarks/lab.md).
func BenchmarkMaps(b *testing.B) {
	const keys = 1 << 16
	for _, writePct := range []int{0, 10, 50} {
		for _, im := range peerlab.Impls() {
			b.Run(fmt.Sprintf("writes=%d%%/%s", writePct, strings.NewReplacer(" ", "_", ",", "").Replace(im.Name)), func(b *testing.B) {
				m := im.New(keys)
				for k := range uint64(keys) {
					m.Store(k, k)
				}
				var seed atomic.Uint64
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					x := seed.Add(0x9E3779B97F4A7C15) | 1
					for pb.Next() {
						x ^= x << 13
						x ^= x >> 7
						x ^= x << 17
						k := x % keys
						if int((x>>40)%100) < writePct {
							m.Store(k, x)
						} else {
							m.Load(k)
						}
					}
				})
			})
		}
	}
}
