package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func init() {
	Register(Experiment{
		Name:  "sync-pool-json",
		Title: "sync.Pool for JSON decoders and buffers, with and without GC pressure",
		Run:   runSyncPool,
	})
}

// spPayload is shaped like a risk callback: a few strings, a number, a list.
type spPayload struct {
	OrderID      string   `json:"order_id"`
	Decision     string   `json:"decision"`
	Score        float64  `json:"score"`
	ModelVersion string   `json:"model_version"`
	Reasons      []string `json:"reasons"`
	DecidedAt    int64    `json:"decided_at"`
}

var (
	spValue = spPayload{
		OrderID: "ord_01HZX3K9Q7V6M2N8P4R5S6T7U8", Decision: "review", Score: 0.7312,
		ModelVersion: "v3.0.2", Reasons: []string{"velocity_1h", "new_device", "amount_above_p95"}, DecidedAt: 1764140000,
	}
	spJSON = func() []byte {
		b, err := json.Marshal(spValue)
		if err != nil {
			panic(err)
		}
		return b
	}()
	spSinkBytes []byte
	spSinkVal   spPayload
)

// spDecoder pairs a json.Decoder with the reader it reads: json.Decoder has
// no Reset, so pooling one means pointing its reader at the next payload.
// That is sound only because every payload is one complete JSON value, and
// a decoder that failed is dropped, never returned to the pool.
type spDecoder struct {
	r bytes.Reader
	d *json.Decoder
}

var (
	spDecMisses, spBufMisses atomic.Int64
	spDecPool                = sync.Pool{New: func() any {
		spDecMisses.Add(1)
		d := new(spDecoder)
		d.d = json.NewDecoder(&d.r)
		return d
	}}
	spBufPool = sync.Pool{New: func() any {
		spBufMisses.Add(1)
		return new(bytes.Buffer)
	}}
)

func spUnmarshal(n int) {
	for range n {
		var v spPayload
		if err := json.Unmarshal(spJSON, &v); err != nil {
			panic(err)
		}
		spSinkVal = v
	}
}

func spFreshDecoder(n int) {
	for range n {
		var v spPayload
		if err := json.NewDecoder(bytes.NewReader(spJSON)).Decode(&v); err != nil {
			panic(err)
		}
		spSinkVal = v
	}
}

func spPooledDecoder(n int) {
	for range n {
		d := spDecPool.Get().(*spDecoder)
		d.r.Reset(spJSON)
		var v spPayload
		if err := d.d.Decode(&v); err != nil {
			panic(err) // and the decoder is not put back
		}
		spDecPool.Put(d)
		spSinkVal = v
	}
}

func spMarshal(n int) {
	for range n {
		b, err := json.Marshal(&spValue)
		if err != nil {
			panic(err)
		}
		spSinkBytes = b
	}
}

func spFreshBuffer(n int) {
	for range n {
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(&spValue); err != nil {
			panic(err)
		}
		spSinkBytes = buf.Bytes()
	}
}

func spPooledBuffer(n int) {
	for range n {
		buf := spBufPool.Get().(*bytes.Buffer)
		buf.Reset()
		if err := json.NewEncoder(buf).Encode(&spValue); err != nil {
			panic(err)
		}
		// A real caller writes buf out before putting it back; here its
		// length stands in for that use.
		spSinkBytes = spJSON[:min(buf.Len(), len(spJSON))]
		spBufPool.Put(buf)
	}
}

// gcPressureChunk is a size class of its own, so the bytes it allocates
// are exactly count*size.
const gcPressureChunk = 32 << 10

// gcPressure allocates garbage and keeps a small live set until stop is
// closed, so collections — which empty sync.Pools — keep happening. It
// counts its allocations in *count, for allocNoise.
func gcPressure(stop <-chan struct{}, done chan<- struct{}, count *atomic.Uint64) {
	defer close(done)
	var ring [64][]byte
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		ring[i%len(ring)] = make([]byte, gcPressureChunk)
		count.Add(1)
		if i%256 == 0 {
			runtime.Gosched()
		}
	}
}

type spRow struct {
	cond, op         string
	ns, allocs, byts Measurement
	rawNS            []float64 // ns/op per round, for paired comparisons
	misses           float64   // pool.New calls per op (pooled ops only)
}

func runSyncPool(ctx context.Context, opt Options) (Result, error) {
	p := planFor(opt)
	p.runs = min(p.runs, 5) // twelve loops per round, half of them with a collector running flat out
	// Under GC pressure single iterations stall for milliseconds now and
	// then; a quick run's 2 ms loops would report the stalls, not the ops.
	p.target = max(p.target, 10*time.Millisecond)
	res := Result{
		Name: "sync-pool-json",
		Claim: "Pooling JSON decoders and encode buffers in a sync.Pool cuts allocations and time per request, " +
			"and keeps doing so under GC pressure.",
	}
	ops := []struct {
		name   string
		fn     func(int)
		misses *atomic.Int64
	}{
		{"decode: json.Unmarshal", spUnmarshal, nil},
		{"decode: new json.Decoder per payload", spFreshDecoder, nil},
		{"decode: pooled json.Decoder", spPooledDecoder, &spDecMisses},
		{"encode: json.Marshal", spMarshal, nil},
		{"encode: new bytes.Buffer + Encoder", spFreshBuffer, nil},
		{"encode: pooled bytes.Buffer + Encoder", spPooledBuffer, &spBufMisses},
	}
	var rows []spRow
	var err error
	Exclusive(func() {
		for _, pressure := range []bool{false, true} {
			cond := "quiet (GOGC=100)"
			var stop, done chan struct{}
			prev := debug.SetGCPercent(100)
			if pressure {
				cond = "GC pressure (GOGC=10 + background allocator)"
				debug.SetGCPercent(10)
				stop, done = make(chan struct{}), make(chan struct{})
				var count atomic.Uint64
				allocNoise = func() (uint64, uint64) { n := count.Load(); return n, n * gcPressureChunk }
				go gcPressure(stop, done, &count) // owned: stopped below
			}
			rows, err = spMeasure(ctx, p, cond, ops, rows)
			if pressure {
				close(stop)
				<-done
				allocNoise = nil
			}
			debug.SetGCPercent(prev)
			if err != nil {
				return
			}
		}
	})
	if err != nil {
		return res, fmt.Errorf("sync-pool-json: %w", err)
	}
	runtime.KeepAlive(spSinkBytes)
	runtime.KeepAlive(spSinkVal)
	return spVerdict(res, rows), nil
}

func spMeasure(ctx context.Context, p plan, cond string, ops []struct {
	name   string
	fn     func(int)
	misses *atomic.Int64
}, rows []spRow) ([]spRow, error) {
	ns := make([][]float64, len(ops))
	al := make([][]float64, len(ops))
	by := make([][]float64, len(ops))
	miss := make([]float64, len(ops))
	var total = make([]float64, len(ops))
	for range p.runs {
		for i, op := range ops {
			if err := ctx.Err(); err != nil {
				return rows, err
			}
			var m0 int64
			if op.misses != nil {
				m0 = op.misses.Load()
			}
			start := time.Now()
			c := measureOp(p.target, op.fn)
			if op.misses != nil {
				miss[i] += float64(op.misses.Load() - m0)
				total[i] += float64(time.Since(start)) / c.ns // ops run, about
			}
			ns[i] = append(ns[i], c.ns)
			al[i] = append(al[i], c.allocs)
			by[i] = append(by[i], c.bytes)
		}
	}
	for i, op := range ops {
		r := spRow{cond: cond, op: op.name,
			ns: summarize(op.name+", "+cond, "ns/op", ns[i]), allocs: summarize(op.name+", "+cond+" allocs", "allocs/op", al[i]),
			byts: summarize("", "B/op", by[i]), rawNS: ns[i]}
		if total[i] > 0 {
			r.misses = miss[i] / total[i]
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func spVerdict(res Result, rows []spRow) Result {
	var tb strings.Builder
	tb.WriteString("| condition | variant | ns/op | allocs/op | B/op | pool.New per op |\n|---|---|---:|---:|---:|---:|\n")
	get := map[string]spRow{}
	for _, r := range rows {
		res.Measurements = append(res.Measurements, r.ns, r.allocs)
		miss := "–"
		if strings.Contains(r.op, "pooled") {
			miss = fmt.Sprintf("%.3g", r.misses)
		}
		fmt.Fprintf(&tb, "| %s | %s | %s | %.1f | %.0f | %s |\n", r.cond, r.op, num(r.ns.Median), r.allocs.Median, r.byts.Median, miss)
		get[r.cond+"|"+r.op] = r
	}
	res.Table = tb.String()
	var wins, total, unclear int
	var where []string
	for _, cond := range []string{"quiet (GOGC=100)", "GC pressure (GOGC=10 + background allocator)"} {
		for _, pair := range [][2]string{
			{"decode: new json.Decoder per payload", "decode: pooled json.Decoder"},
			{"encode: new bytes.Buffer + Encoder", "encode: pooled bytes.Buffer + Encoder"},
		} {
			fresh, pooled := get[cond+"|"+pair[0]], get[cond+"|"+pair[1]]
			total++
			// Faster only if pooled beat fresh in the middle half of the
			// rounds (paired, so load bursts hit both).
			class, _, _ := versus(pairedRatios(pooled.rawNS, fresh.rawNS), 0)
			fewer := pooled.allocs.Median < fresh.allocs.Median
			outcome := "holds"
			switch {
			case fewer && class == "below":
				wins++
			case fewer && class == "straddling":
				unclear++
				outcome = "fewer allocations; time within noise"
			default:
				outcome = "does not hold"
			}
			where = append(where, fmt.Sprintf("%s, %s: %.1f→%.1f allocs/op, %s→%s ns/op (%s)", cond, pair[1],
				fresh.allocs.Median, pooled.allocs.Median, num(fresh.ns.Median), num(pooled.ns.Median), outcome))
		}
	}
	switch {
	case wins == total:
		res.Verdict = Holds
	case wins == 0 && unclear == 0:
		res.Verdict = Refuted
	default: // some held, or allocations fell and the time could not be told apart
		res.Verdict = Depends
	}
	res.Condition = fmt.Sprintf("%s%s; pooled against fresh — %s", runtime.Version(), raceNote(), strings.Join(where, "; "))
	quiet := get["quiet (GOGC=100)|decode: json.Unmarshal"]
	res.Notes = fmt.Sprintf("json.Decoder has no Reset: pooling one means re-pointing its reader, which is only sound for one complete value per payload "+
		"and a decoder dropped after any error. For a []byte already in memory json.Unmarshal needs no decoder at all (%s ns/op, %.1f allocs/op quiet). "+
		"Most allocations left are the decoded value's own strings and slice, which no pool removes. A collection empties the pools "+
		"(the victim cache keeps them one more cycle), which the pool.New-per-op column shows under pressure. "+
		"Allocation counts exclude the background allocator's own, which it counts.",
		num(quiet.ns.Median), quiet.allocs.Median)
	return res
}
