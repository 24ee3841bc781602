package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"unsafe"
)

func init() {
	Register(Experiment{
		Name:  "type-assert",
		Title: "cost of type assertions and type switches; is there a cache?",
		Run:   runTypeAssert,
	})
}

// Values the loops assert on. They live in package variables, are indexed
// by the loop counter and feed package sinks, so that the compiler can
// neither fold the assertion nor drop the loop.
var (
	taStrings = func() []any {
		out := make([]any, 8)
		for i := range out {
			out[i] = strings.Repeat("x", i+1)
		}
		return out
	}()
	taBuffers = func() []any {
		out := make([]any, 8)
		for i := range out {
			out[i] = new(bytes.Buffer)
		}
		return out
	}()
	// Eight different dynamic types, all io.Readers: the interface assertion
	// sees a new type at every call, as a cache-unfriendly call site would.
	taReaders = []any{
		new(bytes.Buffer), new(bytes.Reader), new(strings.Reader), new(bufio.Reader),
		new(io.LimitedReader), new(io.SectionReader), new(io.PipeReader), new(os.File),
	}
	taMixed = []any{1, "s", new(bytes.Buffer), 2.5, 3, "t", new(bytes.Buffer), 4.5}

	taSinkInt    int
	taSinkReader io.Reader
)

func taBaseline(n int) {
	c := 0
	for i := range n {
		if taStrings[i&7] != nil {
			c++
		}
	}
	taSinkInt = c
}

func taString(n int) {
	c := 0
	for i := range n {
		if s, ok := taStrings[i&7].(string); ok {
			c += len(s)
		}
	}
	taSinkInt = c
}

func taBuffer(n int) {
	c := 0
	for i := range n {
		if b, ok := taBuffers[i&7].(*bytes.Buffer); ok {
			c += b.Len()
		}
	}
	taSinkInt = c
}

func taIfaceOne(n int) {
	for i := range n {
		if r, ok := taBuffers[i&7].(io.Reader); ok {
			taSinkReader = r
		}
	}
}

func taIfaceMany(n int) {
	for i := range n {
		if r, ok := taReaders[i&7].(io.Reader); ok {
			taSinkReader = r
		}
	}
}

func taSwitchConcrete(n int) {
	c := 0
	for i := range n {
		switch v := taMixed[i&7].(type) {
		case int:
			c += v
		case string:
			c += len(v)
		case *bytes.Buffer:
			c += v.Len()
		case float64:
			c += int(v)
		}
	}
	taSinkInt = c
}

func taSwitchIface(n int) {
	c := 0
	for i := range n {
		switch taReaders[i&7].(type) {
		case io.WriterTo:
			c++
		case io.ByteScanner:
			c += 2
		case io.Closer:
			c += 3
		}
	}
	taSinkInt = c
}

func runTypeAssert(ctx context.Context, opt Options) (Result, error) {
	p := planFor(opt)
	res := Result{
		Name: "type-assert",
		Claim: "A type assertion costs about 2.1 ns for `i.(string)` and 3.8 ns for `i.(*bytes.Buffer)`, " +
			"allocates nothing, and the runtime has no cache for assertions.",
	}
	ops := []namedOp{
		{"loop baseline (load + nil check)", taBaseline},
		{"i.(string)", taString},
		{"i.(*bytes.Buffer)", taBuffer},
		{"i.(io.Reader), one dynamic type", taIfaceOne},
		{"i.(io.Reader), 8 dynamic types", taIfaceMany},
		{"type switch, 4 concrete cases", taSwitchConcrete},
		{"type switch, 3 interface cases, 8 types", taSwitchIface},
	}
	nsM, allocM, _, err := compareOps(ctx, p, ops)
	if err != nil {
		return res, err
	}
	ns := map[string]float64{}
	maxAllocs := 0.0
	for i, op := range ops {
		res.Measurements = append(res.Measurements, nsM[i], allocM[i])
		ns[op.name] = nsM[i].Median
		maxAllocs = max(maxAllocs, allocM[i].Median)
	}

	assertCalls, symErr := calledFuncs(taIfaceOne)
	switchCalls, err := calledFuncs(taSwitchIface)
	if symErr == nil {
		symErr = err
	}
	runtime.KeepAlive(taSinkInt)
	runtime.KeepAlive(taSinkReader)
	cacheSyms := slices.Contains(assertCalls, "runtime.typeAssert") && slices.Contains(switchCalls, "runtime.interfaceSwitch")
	zeroAllocs := maxAllocs < 0.01
	strRatio := ratio(ns["i.(string)"], 2.1)
	bufRatio := ratio(ns["i.(*bytes.Buffer)"], 3.8)
	figuresClose := strRatio > 0.5 && strRatio < 2 && bufRatio > 0.5 && bufRatio < 2

	var parts []string
	parts = append(parts, fmt.Sprintf("allocations: max %.3g allocs/op over all cases (claim: 0) — %s",
		maxAllocs, holdsWord(zeroAllocs)))
	parts = append(parts, fmt.Sprintf("figures: i.(string) %.2f ns = %.2fx the quoted 2.1 ns, i.(*bytes.Buffer) %.2f ns = %.2fx the quoted 3.8 ns, both including the %.2f ns loop — %s",
		ns["i.(string)"], strRatio, ns["i.(*bytes.Buffer)"], bufRatio, ns["loop baseline (load + nil check)"], holdsWord(figuresClose)))
	switch {
	case symErr != nil:
		parts = append(parts, "cache: could not decode the calls of the assertion loops ("+symErr.Error()+")")
	case cacheSyms:
		parts = append(parts, "cache: the compiled i.(io.Reader) loop calls runtime.typeAssert and the interface type switch calls "+
			"runtime.interfaceSwitch, the Go ≥1.22 per-call-site caches (the inline fast path checks the cache first, "+
			"the call fills it on a miss) — \"no cache\" is refuted; "+
			"assertions to a concrete type need no cache at all, they compare one type word inline")
	default:
		parts = append(parts, fmt.Sprintf("cache: the interface assertion loop calls %v and the switch %v, no cache functions (older Go?)",
			assertCalls, switchCalls))
	}
	res.Notes = strings.Join(parts, "; ") + "."

	switch {
	case !zeroAllocs || (symErr == nil && cacheSyms):
		res.Verdict = Refuted
	case figuresClose:
		res.Verdict = Holds
	default:
		res.Verdict = Depends
	}
	res.Condition = fmt.Sprintf("%s on %s%s: \"0 allocs\" %s (max %.2g allocs/op); \"no cache\" %s (Go ≥1.22 caches assertions to interfaces "+
		"and type switches per call site); matching the quoted ns figures within 2x on this CPU %s (i.(string) %.2f ns, i.(*bytes.Buffer) %.2f ns, loop included)",
		runtime.Version(), cpuModel(), raceNote(), holdsWord(zeroAllocs), maxAllocs, cacheWord(symErr, cacheSyms),
		holdsWord(figuresClose), ns["i.(string)"], ns["i.(*bytes.Buffer)"])
	return res, nil
}

func cacheWord(err error, found bool) string {
	switch {
	case err != nil:
		return "could not be checked"
	case found:
		return "is refuted"
	default:
		return "holds"
	}
}

func holdsWord(ok bool) string {
	if ok {
		return "holds"
	}
	return "does not hold"
}

// calledFuncs lists the functions that fn's machine code calls directly, by
// decoding the CALL rel32 instructions of its body (amd64 only) and keeping
// the targets that are the entry of a known function. It shows what the
// compiler emitted for a call site without needing a symbol table, which
// `go run` strips.
func calledFuncs(fn any) ([]string, error) {
	if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("decoding calls needs amd64, this is %s", runtime.GOARCH)
	}
	entry := reflect.ValueOf(fn).Pointer()
	f := runtime.FuncForPC(entry)
	if f == nil {
		return nil, errors.New("no function at that pc")
	}
	seen := map[string]bool{}
	var out []string
	for pc := entry; runtime.FuncForPC(pc) == f; pc++ {
		// Text is immutable and not managed by the GC; reading it is safe.
		b := unsafe.Slice((*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&pc))), 5)
		if b[0] != 0xE8 {
			continue
		}
		rel := int32(binary.LittleEndian.Uint32(b[1:]))
		target := uintptr(int64(pc) + 5 + int64(rel))
		g := runtime.FuncForPC(target)
		if g == nil || g.Entry() != target || seen[g.Name()] {
			continue
		}
		seen[g.Name()] = true
		out = append(out, g.Name())
	}
	return out, nil
}
