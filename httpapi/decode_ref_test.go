package httpapi

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// checkJSONTokens is the first implementation of checkJSON, on
// json.Decoder.Token: slower, but a straightforward reading of the rules.
// FuzzCheckJSONAgainstTokens holds the fast scanner to the same answers.
func checkJSONTokens(body []byte, s *schema) ([]string, error) {
	if !json.Valid(body) {
		// Only the error path pays for telling the two cases apart.
		var raw json.RawMessage
		if json.NewDecoder(bytes.NewReader(body)).Decode(&raw) == nil {
			return nil, orderflow.Invalid("", "unexpected data after the JSON object")
		}
		return nil, orderflow.Invalid("", "request body is not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, _ := dec.Token() // body is one valid value
	if tok != json.Delim('{') {
		return nil, orderflow.Invalid("", "request body must be a JSON object")
	}
	return tokObject(dec, s, "")
}

func tokObject(dec *json.Decoder, s *schema, path string) ([]string, error) {
	var keys []string
	for dec.More() {
		tok, _ := dec.Token() // a key: the value is known to be valid JSON
		key, _ := tok.(string)
		p := key
		if path != "" {
			p = path + "." + key
		}
		f, ok := s.lookup(key)
		if !ok {
			return nil, orderflow.Invalid(p, "unknown field %q", p)
		}
		for _, k := range keys {
			if k == key {
				return nil, orderflow.Invalid(p, "duplicate field %q", p)
			}
		}
		keys = append(keys, key)
		if err := tokValue(dec, f, p); err != nil {
			return nil, err
		}
	}
	_, _ = dec.Token() // '}'
	return keys, nil
}

func tokValue(dec *json.Decoder, f *field, path string) error {
	tok, _ := dec.Token()
	wrong := func() error { return orderflow.Invalid(path, "%s must be %s", path, kindNames[f.kind]) }
	switch v := tok.(type) {
	case nil:
		if f.nullable {
			return nil
		}
		return orderflow.Invalid(path, "%s must not be null", path)
	case json.Delim:
		switch {
		case v == '{' && f.kind == kObject:
			_, err := tokObject(dec, f.obj, path)
			return err
		case v == '[' && f.kind == kArray:
			for i := 0; dec.More(); i++ {
				if err := tokValue(dec, f.elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
					return err
				}
			}
			_, _ = dec.Token() // ']'
			return nil
		}
		return wrong()
	case string:
		switch f.kind {
		case kString:
			return nil
		case kTime:
			// Exactly what the later Unmarshal into time.Time accepts.
			var t time.Time
			if err := t.UnmarshalText([]byte(v)); err != nil {
				return orderflow.Invalid(path, "%s must be an RFC 3339 time", path)
			}
			return nil
		}
		return wrong()
	case json.Number:
		switch f.kind {
		case kNumber:
			return nil
		case kInt:
			if _, err := strconv.ParseInt(string(v), 10, 64); err != nil {
				if _, ferr := strconv.ParseFloat(string(v), 64); ferr == nil && isIntLiteral(string(v)) {
					return orderflow.Invalid(path, "%s is out of range", path)
				}
				return wrong()
			}
			return nil
		}
		return wrong()
	case bool:
		if f.kind == kBool {
			return nil
		}
		return wrong()
	}
	return wrong()
}

// FuzzCheckJSONAgainstTokens is a differential test: for any body, the
// scanner and the Token walk agree on the keys and on the offending field.
// The one intended difference: a number that does not fit a float64 (1e400)
// is "out of range" on its path for the scanner, while the Token walk let it
// through to fail later in Unmarshal with field "".
func FuzzCheckJSONAgainstTokens(f *testing.F) {
	for _, s := range []string{
		`{"user_id":"u","items":[{"sku":"a","qty":1},{"sku":"b","qty":1.5}]}`,
		`{"user\u005fid":"u","ip":null,"internal":true}`,
		`{"items":[],"amount_minor":-0}`,
		`{"decided_at":"2026-11-26T08:00:00+08:00","score":1e400}`,
		` {"a":1} `, `{}`, `[]`, `{"items":[[]]}`, `{"user_id":"\"}"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, s := range []*schema{newOrderSchema, callbackSchema, emptySchema} {
			gotKeys, gotErr := checkJSON(body, s)
			wantKeys, wantErr := checkJSONTokens(body, s)
			if wantErr == nil && gotErr != nil && strings.Contains(gotErr.Error(), "out of range") {
				continue
			}
			if (gotErr == nil) != (wantErr == nil) || orderflow.ErrorField(gotErr) != orderflow.ErrorField(wantErr) {
				t.Fatalf("%q: scanner %v, tokens %v", body, gotErr, wantErr)
			}
			if gotErr == nil && strings.Join(gotKeys, ",") != strings.Join(wantKeys, ",") {
				t.Fatalf("%q: keys %v vs %v", body, gotKeys, wantKeys)
			}
		}
	})
}

// BenchmarkCheckJSON compares the structural check alone: the byte scanner
// against the json.Decoder.Token walk it replaced.
func BenchmarkCheckJSON(b *testing.B) {
	body := []byte(`{"user_id":"u_123","amount_minor":129900,"currency":"CNY","region":"east-china","items":[{"sku":"sku-1","qty":2},{"sku":"sku-2","qty":1}],"internal":false,"ip":"203.0.113.7","device_id":"d-9"}`)
	for _, bc := range []struct {
		name string
		fn   func([]byte, *schema) ([]string, error)
	}{{"Scanner", checkJSON}, {"Tokens", checkJSONTokens}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := bc.fn(body, newOrderSchema); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
