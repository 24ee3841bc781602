package callbacksig_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/httpapi/callbacksig"
)

var (
	now    = time.Unix(1_790_000_000, 0)
	body   = []byte(`{"order_id":"ord_1"}`)
	oldKey = []byte("old-secret")
	newKey = []byte("new-secret")
)

func TestVerify(t *testing.T) {
	valid := callbacksig.Sign(newKey, now, body)
	v1 := valid[strings.Index(valid, "v1="):]
	tests := []struct {
		name    string
		header  string
		body    []byte
		secrets [][]byte
		want    error
	}{
		{"OK", valid, body, [][]byte{newKey}, nil},
		{"OKRotationReceiverHasBoth", valid, body, [][]byte{oldKey, newKey}, nil},
		{"OKRotationSenderSignsBoth", callbacksig.SignAll([][]byte{oldKey, newKey}, now, body), body, [][]byte{oldKey}, nil},
		{"OKSpaces", fmt.Sprintf(" t=%d , %s ", now.Unix(), v1), body, [][]byte{newKey}, nil},
		{"OKUnknownScheme", valid + ",v2=zzz", body, [][]byte{newKey}, nil},
		{"OKAtWindowEdge", callbacksig.Sign(newKey, now.Add(-300*time.Second), body), body, [][]byte{newKey}, nil},
		{"OKFutureWindowEdge", callbacksig.Sign(newKey, now.Add(300*time.Second), body), body, [][]byte{newKey}, nil},
		{"ErrMissing", "", body, [][]byte{newKey}, callbacksig.ErrMissing},
		{"ErrNoV1", fmt.Sprintf("t=%d", now.Unix()), body, [][]byte{newKey}, callbacksig.ErrMalformed},
		{"ErrNoT", v1, body, [][]byte{newKey}, callbacksig.ErrMalformed},
		{"ErrTwoT", valid + ",t=1", body, [][]byte{newKey}, callbacksig.ErrMalformed},
		{"ErrNegativeT", "t=-5," + v1, body, [][]byte{newKey}, callbacksig.ErrMalformed},
		{"ErrShortHex", fmt.Sprintf("t=%d,v1=abcd", now.Unix()), body, [][]byte{newKey}, callbacksig.ErrMalformed},
		{"ErrBadHex", fmt.Sprintf("t=%d,v1=%s", now.Unix(), strings.Repeat("zz", 32)), body, [][]byte{newKey}, callbacksig.ErrMalformed},
		{"ErrNoEquals", valid + ",junk", body, [][]byte{newKey}, callbacksig.ErrMalformed},
		{"ErrTooManyV1", fmt.Sprintf("t=%d", now.Unix()) + strings.Repeat(","+v1, 9), body, [][]byte{newKey}, callbacksig.ErrMalformed},
		{"ErrTooOld", callbacksig.Sign(newKey, now.Add(-301*time.Second), body), body, [][]byte{newKey}, callbacksig.ErrExpired},
		{"ErrTooNew", callbacksig.Sign(newKey, now.Add(301*time.Second), body), body, [][]byte{newKey}, callbacksig.ErrExpired},
		{"ErrRotatedOut", callbacksig.Sign(oldKey, now, body), body, [][]byte{newKey}, callbacksig.ErrMismatch},
		{"ErrBodyChanged", valid, []byte(`{"order_id":"ord_2"}`), [][]byte{newKey}, callbacksig.ErrMismatch},
		{"ErrTimestampChanged", fmt.Sprintf("t=%d,%s", now.Unix()+1, v1), body, [][]byte{newKey}, callbacksig.ErrMismatch},
		{"ErrNoSecrets", valid, body, nil, callbacksig.ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := callbacksig.Verify(tt.header, tt.body, tt.secrets, now, callbacksig.DefaultTolerance)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(callbacksig.Sign(newKey, now, body))
	f.Add(callbacksig.SignAll([][]byte{oldKey, newKey}, now, body))
	f.Add("t=1,v1=00")
	f.Add(" t = 1 ,v0=x")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		p, err := callbacksig.Parse(h)
		if err != nil {
			return
		}
		if p.T == "" || len(p.V1) == 0 || len(p.V1) > callbacksig.MaxSignatures {
			t.Fatalf("Parse(%q) accepted %+v", h, p)
		}
		for _, s := range p.V1 {
			if len(s) != 32 {
				t.Fatalf("Parse(%q): signature of %d bytes", h, len(s))
			}
		}
		// Whatever parses must verify against its own MAC and nothing else.
		_ = callbacksig.Verify(h, body, [][]byte{newKey}, p.Time, callbacksig.DefaultTolerance)
	})
}

func ExampleSign() {
	t := time.Unix(1_790_000_000, 0)
	h := callbacksig.Sign([]byte("s3cret"), t, []byte(`{}`))
	fmt.Println(h[:14])
	fmt.Println(callbacksig.Verify(h, []byte(`{}`), [][]byte{[]byte("s3cret")}, t.Add(time.Minute), callbacksig.DefaultTolerance))
	// Output:
	// t=1790000000,v
	// <nil>
}
