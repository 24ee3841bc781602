package redislock

import (
	"strconv"
	"testing"
)

// FuzzParseAcquire feeds the decoder of the acquire script's reply (network
// input) with arbitrary shapes: it must never panic, and a token it accepts
// must be the positive decimal it was given.
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
		tok, pttl, err := parseAcquire([]any{flag, second})
		if err != nil {
			return
		}
		if tok == 0 {
			if flag != 0 || asString || pttl != n {
				t.Fatalf("not held: flag=%d second=%v gave pttl %d", flag, second, pttl)
			}
			return
		}
		if want, perr := strconv.ParseUint(s, 10, 64); flag == 0 || !asString || perr != nil || want != tok {
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
		{"Held", []any{int64(1), "1795680195953579"}, 1795680195953579, 0, false},
		{"Busy", []any{int64(0), int64(1234)}, 0, 1234, false},
		{"ZeroToken", []any{int64(1), "0"}, 0, 0, true},
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
