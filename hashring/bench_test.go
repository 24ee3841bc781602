package hashring_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/orderflow/orderflow/hashring"
	"github.com/orderflow/orderflow/hashring/ringmeasure"
)

// benchKeys are the lookup keys of the benchmarks: "order-N", like the
// measurements (and laid out the same way, see ringmeasure.Keys), and a power
// of two in number so the index wraps cheaply.
var benchKeys = ringmeasure.Keys(1 << 16)

func benchRing(b *testing.B, members, vnodes int) *hashring.Ring {
	b.Helper()
	ms := make([]hashring.Member, members)
	for i := range ms {
		ms[i] = hashring.Member{Name: fmt.Sprintf("10.0.%d.%d:8080", i/256, i%256)}
	}
	r, err := hashring.New(ms, hashring.WithVirtualNodes(vnodes))
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func BenchmarkLocate(b *testing.B) {
	for _, members := range []int{3, 10, 100} {
		for _, vnodes := range []int{160, hashring.DefaultVirtualNodes} {
			b.Run(fmt.Sprintf("members=%d/vnodes=%d", members, vnodes), func(b *testing.B) {
				r := benchRing(b, members, vnodes)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, ok := r.Locate(benchKeys[i&(len(benchKeys)-1)]); !ok {
						b.Fatal("empty ring")
					}
					i++
				}
			})
		}
	}
}

func BenchmarkAppendN(b *testing.B) {
	for _, members := range []int{3, 10, 100} {
		b.Run(fmt.Sprintf("members=%d/n=3", members), func(b *testing.B) {
			r := benchRing(b, members, hashring.DefaultVirtualNodes)
			buf := make([]string, 0, 3)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				buf = r.AppendN(buf[:0], benchKeys[i&(len(benchKeys)-1)], 3)
				i++
			}
		})
	}
}

func BenchmarkBuild(b *testing.B) {
	for _, members := range []int{3, 10, 100} {
		b.Run(fmt.Sprintf("members=%d/vnodes=%d", members, hashring.DefaultVirtualNodes), func(b *testing.B) {
			ms := make([]hashring.Member, members)
			for i := range ms {
				ms[i] = hashring.Member{Name: fmt.Sprintf("10.0.%d.%d:8080", i/256, i%256)}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := hashring.New(ms); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(retained(b, ms)), "retained-B")
		})
	}
}

func BenchmarkHash(b *testing.B) {
	b.ReportAllocs()
	i := 0
	var sink uint64
	for b.Loop() {
		sink += hashring.Hash(benchKeys[i&(len(benchKeys)-1)])
		i++
	}
	_ = sink
}

// BenchmarkAddRemove is the cost of one membership change on a live ring:
// one Add and one Remove per iteration, each merging into the previous
// snapshot instead of rebuilding it.
func BenchmarkAddRemove(b *testing.B) {
	for _, members := range []int{10, 100} {
		b.Run(fmt.Sprintf("members=%d/vnodes=%d", members, hashring.DefaultVirtualNodes), func(b *testing.B) {
			r := benchRing(b, members, hashring.DefaultVirtualNodes)
			b.ReportAllocs()
			for b.Loop() {
				if err := r.Add(hashring.Member{Name: "newcomer"}); err != nil {
					b.Fatal(err)
				}
				r.Remove("newcomer")
			}
		})
	}
}

// retained is the heap a ring of ms keeps alive: what a process pays to hold
// it, as opposed to the garbage of building it.
func retained(b *testing.B, ms []hashring.Member) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := hashring.New(ms)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(r)
	return after.HeapAlloc - before.HeapAlloc
}

// BenchmarkLocateHot looks up the same 256 keys over and over, so the parts
// of the ring they touch stay in cache; beside BenchmarkLocate's 65,536 keys
// it separates the cost of computing a lookup from the cost of fetching the
// ring from memory.
func BenchmarkLocateHot(b *testing.B) {
	for _, members := range []int{3, 100} {
		b.Run(fmt.Sprintf("members=%d/vnodes=%d", members, hashring.DefaultVirtualNodes), func(b *testing.B) {
			r := benchRing(b, members, hashring.DefaultVirtualNodes)
			hot := benchKeys[:256]
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r.Locate(hot[i&(len(hot)-1)])
				i++
			}
		})
	}
}
