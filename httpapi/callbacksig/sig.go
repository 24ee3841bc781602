// Package callbacksig signs and verifies risk callbacks: the
// X-Orderflow-Signature header of API.md, "t=<unix seconds>,v1=<hex>", where
// each v1 is HMAC-SHA256(secret, "<t>.<raw body>").
//
// Several v1 values may be present and several secrets may be configured, so
// a secret can be rotated without downtime: the sender signs with the old and
// the new secret while receivers accept either, then the old one is dropped.
// The timestamp bounds replay of a captured request to the tolerance window.
//
// It is a package of its own, importing only the standard library, so the
// risk engine's callback client can sign without pulling in the HTTP layer.
package callbacksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Header is the name of the HTTP header that carries the signature.
const Header = "X-Orderflow-Signature"

// DefaultTolerance is the largest distance API.md allows between the
// signature's timestamp and the receiver's clock.
const DefaultTolerance = 300 * time.Second

// Limits on a header, so a hostile one costs a bounded number of HMACs.
const (
	MaxSignatures = 8  // v1 values checked
	maxParts      = 16 // comma-separated parts, unknown schemes included
	maxHeaderLen  = 2048
)

// Errors Verify returns, for the caller's log; all of them mean 401.
var (
	ErrMissing   = errors.New("callbacksig: signature header missing")
	ErrMalformed = errors.New("callbacksig: signature header malformed")
	ErrExpired   = errors.New("callbacksig: signature timestamp outside the tolerance window")
	ErrMismatch  = errors.New("callbacksig: no signature matches")
)

// Sign returns the header value that signs body at time t with secret.
func Sign(secret []byte, t time.Time, body []byte) string {
	return SignAll([][]byte{secret}, t, body)
}

// SignAll returns a header value with one v1 per secret, for a sender in the
// middle of a rotation.
func SignAll(secrets [][]byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(ts)
	for _, s := range secrets {
		b.WriteString(",v1=")
		b.WriteString(hex.EncodeToString(mac(s, ts, body)))
	}
	return b.String()
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Parsed is a decoded signature header.
type Parsed struct {
	// T is the timestamp exactly as sent: the MAC covers these bytes.
	T string
	// Time is T as a time.
	Time time.Time
	// V1 holds the decoded v1 signatures (32 bytes each), in header order.
	V1 [][]byte
}

// Parse decodes a header value. Parts are "key=value" separated by commas,
// with optional spaces around them; t must appear exactly once as decimal
// seconds; at least one and at most MaxSignatures v1 values of 64 hex digits
// must appear. Parts with other keys (a future v2) are ignored, so a sender
// can add a scheme before receivers know it.
func Parse(h string) (*Parsed, error) {
	if h == "" {
		return nil, ErrMissing
	}
	if len(h) > maxHeaderLen {
		return nil, ErrMalformed
	}
	parts := strings.Split(h, ",")
	if len(parts) > maxParts {
		return nil, ErrMalformed
	}
	p := &Parsed{}
	for _, part := range parts {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || k == "" {
			return nil, ErrMalformed
		}
		switch k {
		case "t":
			if p.T != "" || !isDigits(v) || len(v) > 12 {
				return nil, ErrMalformed
			}
			sec, _ := strconv.ParseInt(v, 10, 64) // ≤ 12 digits: cannot fail
			p.T, p.Time = v, time.Unix(sec, 0)
		case "v1":
			if len(v) != 2*sha256.Size || len(p.V1) == MaxSignatures {
				return nil, ErrMalformed
			}
			sig, err := hex.DecodeString(v)
			if err != nil {
				return nil, ErrMalformed
			}
			p.V1 = append(p.V1, sig)
		}
	}
	if p.T == "" || len(p.V1) == 0 {
		return nil, ErrMalformed
	}
	return p, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Verify checks header against body: well formed, timestamp within tolerance
// of now (either side), and some v1 equal to the MAC under some secret. The
// comparison is constant-time (hmac.Equal). Every error means "reject".
func Verify(header string, body []byte, secrets [][]byte, now time.Time, tolerance time.Duration) error {
	p, err := Parse(header)
	if err != nil {
		return err
	}
	if d := now.Sub(p.Time); d > tolerance || d < -tolerance {
		return ErrExpired
	}
	ok := false
	for _, s := range secrets {
		want := mac(s, p.T, body)
		for _, got := range p.V1 {
			// No early exit: the time taken does not say which one matched.
			ok = hmac.Equal(want, got) || ok
		}
	}
	if !ok {
		return ErrMismatch
	}
	return nil
}
