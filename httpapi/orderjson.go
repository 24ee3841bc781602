package httpapi

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"
)

// appendJSON appends l exactly as json.Marshal writes it: a page of the
// list endpoint, which a watching client may read many times a second.
func (l *listJSON) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"orders":`...)
	if l.Orders == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, o := range l.Orders {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = o.appendJSON(b); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	if l.NextCursor != "" {
		b = append(b, `,"next_cursor":`...)
		b = appendJSONString(b, l.NextCursor)
	}
	return append(b, '}'), nil
}

// appendJSON appends j exactly as json.Marshal writes it (the test compares
// the two on odd strings and floats), without reflection: an order is the
// body of every create and every poll, and json.Marshal of it was ~2.6 % of
// serve's CPU per decided order (docs/benchmarks/pipeline.md).
func (j *orderJSON) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, j.ID)
	b = append(b, `,"user_id":`...)
	b = appendJSONString(b, j.UserID)
	b = append(b, `,"amount_minor":`...)
	b = strconv.AppendInt(b, j.AmountMinor, 10)
	b = append(b, `,"currency":`...)
	b = appendJSONString(b, j.Currency)
	b = append(b, `,"region":`...)
	b = appendJSONString(b, j.Region)
	b = append(b, `,"items":`...)
	if j.Items == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, it := range j.Items {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"sku":`...)
			b = appendJSONString(b, it.SKU)
			b = append(b, `,"qty":`...)
			b = strconv.AppendInt(b, it.Qty, 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"internal":`...)
	b = strconv.AppendBool(b, j.Internal)
	if j.IP != "" {
		b = append(b, `,"ip":`...)
		b = appendJSONString(b, j.IP)
	}
	if j.DeviceID != "" {
		b = append(b, `,"device_id":`...)
		b = appendJSONString(b, j.DeviceID)
	}
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(j.Status))
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, j.Version, 10)
	b = append(b, `,"risk":`...)
	if j.Risk == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"decision":`...)
		b = appendJSONString(b, string(j.Risk.Decision))
		b = append(b, `,"score":`...)
		var err error
		if b, err = appendJSONFloat(b, j.Risk.Score); err != nil {
			return nil, err
		}
		b = append(b, `,"model_version":`...)
		b = appendJSONString(b, j.Risk.ModelVersion)
		b = append(b, `,"decided_at":`...)
		b = appendWireTime(b, j.Risk.DecidedAt)
		b = append(b, '}')
	}
	b = append(b, `,"created_at":`...)
	b = appendWireTime(b, j.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendWireTime(b, j.UpdatedAt)
	return append(b, '}'), nil
}

func appendWireTime(b []byte, t wireTime) []byte {
	b = append(b, '"')
	b = time.Time(t).UTC().AppendFormat(b, TimeFormat)
	return append(b, '"')
}

// appendJSONString writes plain printable ASCII itself and leaves anything
// else (escapes, HTML-escaped <>&, non-ASCII, invalid UTF-8) to
// encoding/json, so the output is always json.Marshal's.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

var errUnsupportedFloat = errors.New("httpapi: NaN or infinite number has no JSON form")

// appendJSONFloat is encoding/json's float64 encoding: shortest 'f' form,
// 'e' form below 1e-6 and from 1e21, with e-07 written e-7.
func appendJSONFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, errUnsupportedFloat
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}
