package redislock

import (
	"strconv"
	"testing"
)

// FuzzParseAcquire feeds the decoder of the acquire script's reply (network
// input) with arbitrary shapes: it must never panic, and a token it accepts
// must be the positive decimal it was given, with a positive pttl.
func FuzzParseAcquire(f *testing.F) {
	f.Add(int64(1), "1795680195953579", int64(0), true)
	f.Add(int64(0), "", int64(2500), false)
	f.Add(int64(1), "0", int64(0), true)
	f.Add(int64(1), "-5", int64(0), true)
	f.Add(int64(1), "18446744073709551616", int64(0), true)
	f.Add(int64(0), "x", int64(-1), true)
	f.Fuzz(func(t *testing.T, flag int64, s string, n int64, asString bool) {
		second := any(n)
		if asString {
			second = s
		}
		res := []any{flag, second}
		if flag != 0 {
			res = append(res, n)
		}
		tok, pttl, err := parseAcquire(res)
		if err != nil {
			return
		}
		if tok == 0 {
			if flag != 0 || asString || pttl != n {
				t.Fatalf("not held: flag=%d second=%v gave pttl %d", flag, second, pttl)
			}
			return
		}
		if want, perr := strconv.ParseUint(s, 10, 64); flag == 0 || !asString || perr != nil || want != tok || pttl != n || n <= 0 {
			t.Fatalf("held: flag=%d second=%v gave token %d", flag, second, tok)
		}
	})
}

func TestParseAcquire(t *testing.T) {
	for _, tc := range []struct {
		name    string
		res     []any
		tok     uint64
		pttl    int64
		wantErr bool
	}{
		{"Held", []any{int64(1), "1795680195953579", int64(10000)}, 1795680195953579, 10000, false},
		{"HeldWithoutPttl", []any{int64(1), "1795680195953579"}, 0, 0, true},
		{"HeldPttlNotPositive", []any{int64(1), "1795680195953579", int64(-2)}, 0, 0, true},
		{"BusyTooLong", []any{int64(0), int64(1234), int64(1)}, 0, 0, true},
		{"Busy", []any{int64(0), int64(1234)}, 0, 1234, false},
		{"ZeroToken", []any{int64(1), "0", int64(10000)}, 0, 0, true},
		{"Short", []any{int64(1)}, 0, 0, true},
		{"FlagNotInt", []any{"1", "5"}, 0, 0, true},
		{"PttlNotInt", []any{int64(0), "5"}, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, pttl, err := parseAcquire(tc.res)
			if (err != nil) != tc.wantErr || tok != tc.tok || pttl != tc.pttl {
				t.Errorf("parseAcquire(%v) = %d, %d, %v; want %d, %d, error %v", tc.res, tok, pttl, err, tc.tok, tc.pttl, tc.wantErr)
			}
		})
	}
}
