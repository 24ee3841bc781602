package riskapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/orderflow/orderflow"
)

// MaxBodyBytes caps every request body (API.md: over 64 KiB is 413).
const MaxBodyBytes = 64 << 10

// readJSON enforces the body rules of API.md: Content-Type application/json
// (415), at most 64 KiB (413), then decodes strictly into v: unknown fields,
// wrong types and trailing data are 400 naming the field.
func readJSON(r *http.Request, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return orderflow.Errorf(orderflow.EUnsupportedMedia, "Content-Type must be application/json")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return orderflow.Wrap(orderflow.EInvalid, err, "reading body failed")
	}
	if len(body) > MaxBodyBytes {
		return orderflow.Errorf(orderflow.EPayloadTooLarge, "body over %d bytes", MaxBodyBytes)
	}
	return decodeStrict(body, v)
}

// decodeStrict decodes one JSON object into v, refusing unknown fields,
// wrong types and anything after the object.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return orderflow.Invalid("", "trailing data after the JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return orderflow.Invalid(te.Field, "%s must be a JSON %s", te.Field, te.Type.Kind())
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return orderflow.Invalid(name, "unknown field %s", name)
	}
	return orderflow.Invalid("", "body is not a JSON object: %v", err)
}

// validID checks an order id: 1-64 of [A-Za-z0-9_-], as the domain does.
func validID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validPrintable checks 1-max printable ASCII characters.
func validPrintable(s string, max int) bool {
	if len(s) < 1 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
