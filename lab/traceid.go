package lab

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"runtime"
	"strings"
	"unsafe"
)

func init() {
	Register(Experiment{
		Name:  "traceid-unsafe",
		Title: "the \"zero-copy traceID\" *(*string)(unsafe.Pointer(&arr)) on a [16]byte: what it really reads",
		Run:   runTraceID,
	})
}

// traceBuf holds a trace id aligned like a string header, as the snippet
// needs: converting a less aligned pointer to *string is undefined (and
// -race's checkptr rejects it), which is one more thing the snippet gets
// wrong.
type traceBuf struct {
	_  [0]uint64
	id [16]byte
}

// sampleTraceID is the W3C traceparent example id.
var sampleTraceID = func() traceBuf {
	var t traceBuf
	if _, err := hex.Decode(t.id[:], []byte("4bf92f3577b34da6a3ce929d0e0e4736")); err != nil {
		panic(err)
	}
	return t
}()

// headerOf computes, without dereferencing anything, the string header the
// snippet would make of b: a string header is {data pointer, length}, so
// the first 8 bytes become an address and the next 8 a length.
func headerOf(b [16]byte) (data uintptr, length int64) {
	return uintptr(binary.NativeEndian.Uint64(b[0:8])), int64(binary.NativeEndian.Uint64(b[8:16]))
}

// craftedRead shows the snippet dereferencing what it takes for a pointer:
// the array is filled with the address and length of an unrelated buffer,
// and the "trace id string" comes out as that buffer's bytes. The buffer is
// kept alive by hand because the GC cannot see a pointer stored in bytes.
func craftedRead() (got string, arr [16]byte) {
	secret := []byte("session=s3cr3t; not a trace id")
	var t traceBuf
	binary.NativeEndian.PutUint64(t.id[0:8], uint64(uintptr(unsafe.Pointer(&secret[0]))))
	binary.NativeEndian.PutUint64(t.id[8:16], uint64(len(secret)))
	s := *(*string)(unsafe.Pointer(&t.id)) // the snippet, verbatim
	got = strings.Clone(s)
	runtime.KeepAlive(secret)
	return got, t.id
}

var tiSink string

func tiConvert(n int) {
	for range n {
		tiSink = string(sampleTraceID.id[:])
	}
}

func tiUnsafeString(n int) {
	for range n {
		tiSink = unsafe.String(&sampleTraceID.id[0], len(sampleTraceID.id))
	}
}

func tiHex(n int) {
	for range n {
		tiSink = hex.EncodeToString(sampleTraceID.id[:])
	}
}

// tiHexInto encodes into a caller-owned array and aliases it: no
// allocation, but the string changes if the array is reused.
var tiHexBuf [32]byte

func tiHexInto(n int) {
	for range n {
		hex.Encode(tiHexBuf[:], sampleTraceID.id[:])
		tiSink = unsafe.String(&tiHexBuf[0], len(tiHexBuf))
	}
}

func runTraceID(ctx context.Context, opt Options) (Result, error) {
	p := planFor(opt)
	res := Result{
		Name: "traceid-unsafe",
		Claim: "`*(*string)(unsafe.Pointer(&arr))` turns a [16]byte trace id into a string without copying " +
			"(\"zero-copy traceID\").",
	}
	data, length := headerOf(sampleTraceID.id)
	crafted, craftedArr := craftedRead()
	wantHex := hex.EncodeToString(sampleTraceID.id[:])
	res.Measurements = append(res.Measurements,
		Measurement{Name: "length the snippet would give the real trace id (bytes 8..15)", Median: float64(length), Unit: "bytes", Runs: 1},
		Measurement{Name: "length of the id's raw bytes (what a correct conversion gives)", Median: float64(len(sampleTraceID.id)), Unit: "bytes", Runs: 1},
	)
	ops := []namedOp{
		{"string(arr[:]) (copies 16 bytes)", tiConvert},
		{"unsafe.String(&arr[0], len(arr)) (aliases)", tiUnsafeString},
		{"hex.EncodeToString(arr[:]) (32 chars, what logs and headers want)", tiHex},
		{"hex.Encode into [32]byte + unsafe.String", tiHexInto},
	}
	ns, allocs, _, err := compareOps(ctx, p, ops)
	if err != nil {
		return res, err
	}
	for i := range ops {
		res.Measurements = append(res.Measurements, ns[i], allocs[i])
	}
	runtime.KeepAlive(tiSink)

	wrong := length != int64(len(sampleTraceID.id)) && crafted != string(craftedArr[:])
	if wrong {
		res.Verdict = Refuted
	} else {
		res.Verdict = Holds
	}
	res.Condition = fmt.Sprintf("on every platform with 16-byte string headers (here %s/%s, %d-byte header): "+
		"for the id %s the snippet builds a header with data pointer %#x (bytes 0..7) and length %d (bytes 8..15) — "+
		"a string of %.1f EiB at an address nobody allocated; with bytes crafted to point at a real buffer it returned %q",
		runtime.GOOS, runtime.GOARCH, unsafe.Sizeof(""), wantHex, data, length, float64(length)/(1<<60), crafted)
	res.Notes = fmt.Sprintf("A [16]byte is the string's bytes, not a string header; reinterpreting it needs the address of the bytes, "+
		"i.e. unsafe.String(&arr[0], len(arr)) (%.1f ns, %.2g allocs/op here), which aliases the array — only safe if the array never changes. "+
		"string(arr[:]) copies (%.1f ns, %.2g allocs/op; the compiler avoids the allocation when the string does not escape). "+
		"A trace id in logs and headers is hex anyway: hex.EncodeToString costs %.1f ns and %.2g allocs/op, "+
		"or %.1f ns and %.2g allocs/op encoding into a reused [32]byte.",
		ns[1].Median, allocs[1].Median, ns[0].Median, allocs[0].Median, ns[2].Median, allocs[2].Median, ns[3].Median, allocs[3].Median)
	return res, nil
}
