package httpapi

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/orderflow/orderflow"
)

// kind is the JSON type a schema field expects.
type kind int

const (
	kString kind = iota
	kInt         // an integer literal that fits int64: no fraction, no exponent
	kNumber      // any JSON number
	kBool
	kTime // a string holding an RFC 3339 time
	kArray
	kObject
)

var kindNames = map[kind]string{
	kString: "a string", kInt: "an integer", kNumber: "a number", kBool: "a boolean",
	kTime: "an RFC 3339 time string", kArray: "an array", kObject: "an object",
}

// field is one member of an object schema.
type field struct {
	name     string
	kind     kind
	nullable bool    // null means "absent" (optional fields only)
	elem     *field  // kArray: the element
	obj      *schema // kObject: the members
}

// schema is the set of members an object may have. Unknown members,
// duplicates, wrong types and nulls for non-nullable members are rejected.
type schema struct{ fields []field }

func (s *schema) lookup(name string) (*field, bool) {
	for i := range s.fields {
		if s.fields[i].name == name {
			return &s.fields[i], true
		}
	}
	return nil, false
}

var (
	itemSchema     = &schema{fields: []field{{name: "sku", kind: kString}, {name: "qty", kind: kInt}}}
	newOrderSchema = &schema{fields: []field{
		{name: "user_id", kind: kString},
		{name: "amount_minor", kind: kInt},
		{name: "currency", kind: kString},
		{name: "region", kind: kString},
		{name: "items", kind: kArray, elem: &field{kind: kObject, obj: itemSchema}},
		{name: "internal", kind: kBool, nullable: true},
		{name: "ip", kind: kString, nullable: true},
		{name: "device_id", kind: kString, nullable: true},
	}}
	callbackSchema = &schema{fields: []field{
		{name: "event_id", kind: kString},
		{name: "order_id", kind: kString},
		{name: "event_type", kind: kString},
		{name: "decision", kind: kString},
		{name: "score", kind: kNumber},
		{name: "model_version", kind: kString},
		{name: "decided_at", kind: kTime},
	}}
	emptySchema = &schema{}
)

// checkJSON validates body against s without building anything and names
// the first offending member in document order as a JSON path
// ("items[0].qty"). It returns the top-level keys in document order, for
// validateInOrder. A body that is not one JSON value (syntax error, trailing
// data) is invalid_argument with field "".
//
// Syntax is settled first by json.Valid, so the walk below can trust the
// bytes and stay allocation-light: json.Decoder.Token, the obvious tool,
// allocates per token and made strict decoding ~10x encoding/json's cost.
func checkJSON(body []byte, s *schema) ([]string, error) {
	keys, _, err := scanJSON(body, s)
	return keys, err
}

// scanJSON is checkJSON that also returns the raw bytes of each top-level
// member's value, beside its key, for the decoders to read without a
// second, reflective pass (encoding/json.Unmarshal).
func scanJSON(body []byte, s *schema) ([]string, [][]byte, error) {
	if !json.Valid(body) {
		// Only the error path pays for telling the two cases apart.
		var raw json.RawMessage
		if json.NewDecoder(bytes.NewReader(body)).Decode(&raw) == nil {
			return nil, nil, orderflow.Invalid("", "unexpected data after the JSON object")
		}
		return nil, nil, orderflow.Invalid("", "request body is not valid JSON")
	}
	sc := scanner{b: body}
	sc.ws()
	if sc.b[sc.i] != '{' {
		return nil, nil, orderflow.Invalid("", "request body must be a JSON object")
	}
	keys, err := sc.object(s, "")
	if err != nil {
		return nil, nil, err
	}
	return keys, sc.top, nil
}

// scanner walks JSON that json.Valid has accepted, so it never checks syntax.
type scanner struct {
	b   []byte
	i   int
	top [][]byte // the raw value of each top-level member, in document order
}

func (sc *scanner) ws() {
	for sc.i < len(sc.b) {
		switch sc.b[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// str consumes a string and returns its raw bytes, quotes included.
func (sc *scanner) str() []byte {
	start := sc.i
	sc.i++ // opening quote
	for {
		switch sc.b[sc.i] {
		case '\\':
			sc.i += 2
		case '"':
			sc.i++
			return sc.b[start:sc.i]
		default:
			sc.i++
		}
	}
}

// num skips a number and returns its literal.
func (sc *scanner) num() []byte {
	start := sc.i
	for sc.i < len(sc.b) && strings.IndexByte("+-0123456789.eE", sc.b[sc.i]) >= 0 {
		sc.i++
	}
	return sc.b[start:sc.i]
}

// unquote decodes a raw JSON string as encoding/json does (escapes, and
// invalid UTF-8 replaced by U+FFFD).
func unquote(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	_ = json.Unmarshal(raw, &s) // valid JSON string: cannot fail
	return s
}

func (sc *scanner) object(s *schema, path string) ([]string, error) {
	sc.i++ // '{'
	var keys []string
	sc.ws()
	if sc.b[sc.i] == '}' {
		sc.i++
		return keys, nil
	}
	for {
		sc.ws()
		key := unquote(sc.str())
		sc.ws()
		sc.i++ // ':'
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
		sc.ws()
		start := sc.i
		if err := sc.value(f, p); err != nil {
			return nil, err
		}
		if path == "" {
			sc.top = append(sc.top, sc.b[start:sc.i])
		}
		sc.ws()
		c := sc.b[sc.i]
		sc.i++ // ',' or '}'
		if c == '}' {
			return keys, nil
		}
	}
}

func (sc *scanner) value(f *field, path string) error {
	sc.ws()
	wrong := func() error { return orderflow.Invalid(path, "%s must be %s", path, kindNames[f.kind]) }
	switch c := sc.b[sc.i]; c {
	case 'n':
		sc.i += len("null")
		if f.nullable {
			return nil
		}
		return orderflow.Invalid(path, "%s must not be null", path)
	case 't', 'f':
		if f.kind != kBool {
			return wrong()
		}
		if c == 't' {
			sc.i += len("true")
		} else {
			sc.i += len("false")
		}
		return nil
	case '"':
		raw := sc.str()
		switch f.kind {
		case kString:
			return nil
		case kTime:
			// Exactly what the later Unmarshal into time.Time accepts.
			var t time.Time
			if err := t.UnmarshalText([]byte(unquote(raw))); err != nil {
				return orderflow.Invalid(path, "%s must be an RFC 3339 time", path)
			}
			return nil
		}
		return wrong()
	case '{':
		if f.kind != kObject {
			return wrong()
		}
		_, err := sc.object(f.obj, path)
		return err
	case '[':
		if f.kind != kArray {
			return wrong()
		}
		sc.i++
		sc.ws()
		if sc.b[sc.i] == ']' {
			sc.i++
			return nil
		}
		for n := 0; ; n++ {
			if err := sc.value(f.elem, path+"["+strconv.Itoa(n)+"]"); err != nil {
				return err
			}
			sc.ws()
			c := sc.b[sc.i]
			sc.i++ // ',' or ']'
			if c == ']' {
				return nil
			}
		}
	default: // a number
		lit := string(sc.num())
		switch f.kind {
		case kNumber:
			if _, err := strconv.ParseFloat(lit, 64); err != nil {
				return orderflow.Invalid(path, "%s is out of range", path)
			}
			return nil
		case kInt:
			if _, err := strconv.ParseInt(lit, 10, 64); err != nil {
				if isIntLiteral(lit) {
					return orderflow.Invalid(path, "%s is out of range", path)
				}
				return wrong()
			}
			return nil
		}
		return wrong()
	}
}

// isIntLiteral reports whether a JSON number has no fraction or exponent.
func isIntLiteral(s string) bool {
	return !strings.ContainsAny(s, ".eE")
}

// decodeNewOrder strictly decodes and validates a create request. The
// values are read from the bytes scanJSON has checked against the schema,
// as encoding/json.Unmarshal would read them (FuzzDecodeMatchesUnmarshal),
// without its reflection: decoding was ~2 % of serve's CPU per order.
func decodeNewOrder(body []byte) (orderflow.NewOrder, error) {
	var n orderflow.NewOrder
	keys, vals, err := scanJSON(body, newOrderSchema)
	if err != nil {
		return n, err
	}
	for i, k := range keys {
		raw := vals[i]
		if raw[0] == 'n' { // null, allowed by the schema: the field stays zero
			continue
		}
		switch k {
		case "user_id":
			n.UserID = unquote(raw)
		case "amount_minor":
			n.AmountMinor, _ = strconv.ParseInt(string(raw), 10, 64) // checked by scanJSON
		case "currency":
			n.Currency = unquote(raw)
		case "region":
			n.Region = unquote(raw)
		case "items":
			n.Items = decodeItems(raw)
		case "internal":
			n.Internal = raw[0] == 't'
		case "ip":
			n.IP = unquote(raw)
		case "device_id":
			n.DeviceID = unquote(raw)
		}
	}
	return n, validateInOrder(keys, func(key string) error {
		p := validNewOrder()
		switch key {
		case "user_id":
			p.UserID = n.UserID
		case "amount_minor":
			p.AmountMinor = n.AmountMinor
		case "currency":
			p.Currency = n.Currency
		case "region":
			p.Region = n.Region
		case "items":
			p.Items = n.Items
		case "ip":
			p.IP = n.IP
		case "device_id":
			p.DeviceID = n.DeviceID
		}
		return p.Validate()
	}, n.Validate)
}

// decodeItems reads an items array that scanJSON has checked against
// itemSchema: objects with sku (a string) and qty (an int64), each at most
// once.
func decodeItems(raw []byte) []orderflow.Item {
	items := []orderflow.Item{}
	sc := scanner{b: raw}
	sc.i++ // '['
	for {
		sc.ws()
		if sc.b[sc.i] == ']' {
			return items
		}
		sc.i++ // '{'
		var it orderflow.Item
		for {
			sc.ws()
			if sc.b[sc.i] == '}' {
				sc.i++
				break
			}
			key := unquote(sc.str())
			sc.ws()
			sc.i++ // ':'
			sc.ws()
			var raw []byte
			if sc.b[sc.i] == '"' {
				raw = sc.str()
			} else {
				raw = sc.num()
			}
			switch key {
			case "sku":
				it.SKU = unquote(raw)
			case "qty":
				it.Qty, _ = strconv.ParseInt(string(raw), 10, 64)
			}
			sc.ws()
			if sc.b[sc.i] == ',' {
				sc.i++
			}
		}
		items = append(items, it)
		sc.ws()
		if sc.b[sc.i] == ',' {
			sc.i++
		}
	}
}

// decodeCallback strictly decodes and validates a risk callback. decided_at
// may carry any offset; it is kept in UTC. Like decodeNewOrder it reads the
// values from the checked bytes, as encoding/json.Unmarshal would.
func decodeCallback(body []byte) (orderflow.Callback, error) {
	var c orderflow.Callback
	keys, vals, err := scanJSON(body, callbackSchema)
	if err != nil {
		return c, err
	}
	for i, k := range keys {
		raw := vals[i]
		switch k {
		case "event_id":
			c.EventID = unquote(raw)
		case "order_id":
			c.OrderID = unquote(raw)
		case "event_type":
			c.EventType = orderflow.EventType(unquote(raw))
		case "decision":
			c.Decision = orderflow.Decision(unquote(raw))
		case "score":
			c.Score, _ = strconv.ParseFloat(string(raw), 64) // checked by scanJSON
		case "model_version":
			c.ModelVersion = unquote(raw)
		case "decided_at":
			// What encoding/json does for a time.Time: the raw string,
			// escapes and all (scanJSON checked the unescaped text).
			if err := c.DecidedAt.UnmarshalJSON(raw); err != nil {
				return c, orderflow.Invalid("", "request body does not match the schema")
			}
		}
	}
	c.DecidedAt = c.DecidedAt.UTC()
	return c, validateInOrder(keys, func(key string) error {
		p := validCallback()
		switch key {
		case "event_id":
			p.EventID = c.EventID
		case "order_id":
			p.OrderID = c.OrderID
		case "event_type":
			p.EventType = c.EventType
		case "decision":
			p.Decision = c.Decision
		case "score":
			p.Score = c.Score
		case "model_version":
			p.ModelVersion = c.ModelVersion
		case "decided_at":
			p.DecidedAt = c.DecidedAt
		}
		return p.Validate()
	}, c.Validate)
}

// decodeEmpty accepts an empty body or an empty JSON object: the body of
// cancel and fulfill.
func decodeEmpty(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	_, err := checkJSON(body, emptySchema)
	return err
}

// validateInOrder reports the first invalid field in document order. The
// domain's Validate checks fields in API.md order, so each present field is
// checked on its own, spliced into a value that is otherwise valid; what is
// left (missing fields, rules across fields) is then up to the full Validate.
func validateInOrder(keys []string, one func(key string) error, all func() error) error {
	for _, k := range keys {
		if err := one(k); err != nil {
			return err
		}
	}
	return all()
}

func validNewOrder() orderflow.NewOrder {
	return orderflow.NewOrder{UserID: "u", AmountMinor: 1, Currency: "XXX", Region: "r",
		Items: []orderflow.Item{{SKU: "s", Qty: 1}}}
}

func validCallback() orderflow.Callback {
	return orderflow.Callback{EventID: "e", OrderID: "o", EventType: orderflow.EventRiskDecided,
		Decision: orderflow.DecisionApprove, ModelVersion: "m", DecidedAt: time.Unix(1, 0)}
}
