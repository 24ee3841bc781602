package httpapi

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

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

// checkJSON validates body against s without building anything, walking the
// token stream so the error names the first offending member in document
// order as a JSON path ("items[0].qty"). It returns the top-level keys in
// document order, for validateInOrder. A body that is not one JSON value
// (syntax error, trailing data) is invalid_argument with field "".
func checkJSON(body []byte, s *schema) ([]string, error) {
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
	return walkObject(dec, s, "")
}

func walkObject(dec *json.Decoder, s *schema, path string) ([]string, error) {
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
		if err := walkValue(dec, f, p); err != nil {
			return nil, err
		}
	}
	_, _ = dec.Token() // '}'
	return keys, nil
}

func walkValue(dec *json.Decoder, f *field, path string) error {
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
			_, err := walkObject(dec, f.obj, path)
			return err
		case v == '[' && f.kind == kArray:
			for i := 0; dec.More(); i++ {
				if err := walkValue(dec, f.elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
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

// isIntLiteral reports whether a JSON number has no fraction or exponent.
func isIntLiteral(s string) bool {
	return !bytes.ContainsAny([]byte(s), ".eE")
}

// decodeNewOrder strictly decodes and validates a create request.
func decodeNewOrder(body []byte) (orderflow.NewOrder, error) {
	var n orderflow.NewOrder
	keys, err := checkJSON(body, newOrderSchema)
	if err != nil {
		return n, err
	}
	if err := json.Unmarshal(body, &n); err != nil {
		return n, orderflow.Invalid("", "request body does not match the schema")
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

// decodeCallback strictly decodes and validates a risk callback. decided_at
// may carry any offset; it is kept in UTC.
func decodeCallback(body []byte) (orderflow.Callback, error) {
	var c orderflow.Callback
	keys, err := checkJSON(body, callbackSchema)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return c, orderflow.Invalid("", "request body does not match the schema")
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
