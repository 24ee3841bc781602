package lab

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

// The benchmarks run the loops the experiments time, under the testing
// package's own harness, so that benchstat can compare runs (see
// docs/benchmarks/lab.md for the commands and numbers).

func BenchmarkTypeAssert(b *testing.B) {
	for _, c := range []struct {
		name string
		fn   func(int)
	}{
		{"baseline", taBaseline},
		{"string", taString},
		{"bytesBuffer", taBuffer},
		{"ioReader_oneType", taIfaceOne},
		{"ioReader_8types", taIfaceMany},
		{"switch_concrete", taSwitchConcrete},
		{"switch_iface", taSwitchIface},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			c.fn(b.N)
		})
	}
}

func BenchmarkDefer(b *testing.B) {
	for _, c := range []struct {
		name string
		fn   func()
	}{
		{"lock_direct", dfDirect},
		{"lock_defer", dfDeferred},
		{"loop8_direct", dfLoopDirect},
		{"loop8_defer", dfLoopDeferred},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.fn()
			}
		})
	}
}

func BenchmarkTraceID(b *testing.B) {
	for _, c := range []struct {
		name string
		fn   func(int)
	}{
		{"string_conversion", tiConvert},
		{"unsafe_String", tiUnsafeString},
		{"hex_EncodeToString", tiHex},
		{"hex_Encode_reused", tiHexInto},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			c.fn(b.N)
		})
	}
}

func BenchmarkChannels(b *testing.B) {
	for _, c := range []struct {
		name string
		fn   func(int)
	}{
		{"unbuffered_pingpong", chPingPong},
		{"buffered_same_goroutine", chBuffered},
		{"select_default", chSelectDefault},
		{"closed_receive", chClosedRecv},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			c.fn(b.N)
		})
	}
}

func BenchmarkJSONPool(b *testing.B) {
	for _, c := range []struct {
		name string
		fn   func(int)
	}{
		{"decode_Unmarshal", spUnmarshal},
		{"decode_fresh_Decoder", spFreshDecoder},
		{"decode_pooled_Decoder", spPooledDecoder},
		{"encode_Marshal", spMarshal},
		{"encode_fresh_Buffer", spFreshBuffer},
		{"encode_pooled_Buffer", spPooledBuffer},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			c.fn(b.N)
		})
	}
}

// BenchmarkMaps drives the lab's map contenders with b.RunParallel over
// 65536 keys; bench/peers/lab adds xsync to the same shape.
func BenchmarkMaps(b *testing.B) {
	const keys = 1 << 16
	for _, writePct := range []int{0, 10, 50} {
		for _, im := range MapImpls() {
			name := fmt.Sprintf("writes=%d%%/%s", writePct, strings.NewReplacer(" ", "_", ",", "").Replace(im.Name))
			b.Run(name, func(b *testing.B) {
				m := im.New(keys)
				for k := range uint64(keys) {
					m.Store(k, k)
				}
				var seed atomic.Uint64
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					x := seed.Add(0x9E3779B97F4A7C15) | 1 // a different key sequence per goroutine
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
