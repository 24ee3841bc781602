package chaos

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"time"
)

type latencyJSON struct {
	Fixed       string  `json:"fixed"`
	Jitter      string  `json:"jitter"`
	Probability float64 `json:"probability"`
	Sides       []Side  `json:"sides,omitempty"`
	PathPrefix  string  `json:"path_prefix,omitempty"`
}

type errorJSON struct {
	Status      int     `json:"status,omitempty"`
	Drop        bool    `json:"drop,omitempty"`
	Probability float64 `json:"probability"`
	Sides       []Side  `json:"sides,omitempty"`
	PathPrefix  string  `json:"path_prefix,omitempty"`
}

type cpuJSON struct {
	Share    float64 `json:"share"`
	Duration string  `json:"duration"`
	Until    string  `json:"until,omitempty"`
}

type settingsJSON struct {
	Latency *latencyJSON `json:"latency,omitempty"`
	Error   *errorJSON   `json:"error,omitempty"`
	CPU     *cpuJSON     `json:"cpu,omitempty"`
}

// MarshalJSON writes the JSON form above.
func (s Settings) MarshalJSON() ([]byte, error) {
	var out settingsJSON
	if l := s.Latency; l != nil {
		out.Latency = &latencyJSON{l.Fixed.String(), l.Jitter.String(), l.Probability, l.Sides, l.PathPrefix}
	}
	if e := s.Error; e != nil {
		out.Error = &errorJSON{e.Status, e.Drop, e.Probability, e.Sides, e.PathPrefix}
	}
	if c := s.CPU; c != nil {
		out.CPU = &cpuJSON{Share: c.Share, Duration: c.Duration.String()}
		if !c.Until.IsZero() {
			out.CPU.Until = c.Until.UTC().Format(time.RFC3339Nano)
		}
	}
	return json.Marshal(out)
}

// ParseSettings decodes the JSON form of Settings, as GET /admin/chaos
// returns it and PUT accepts it:
//
//	{
//	  "latency": {"fixed": "200ms", "jitter": "50ms", "probability": 0.5,
//	              "sides": ["server"], "path_prefix": "/v1/orders"},
//	  "error":   {"status": 503, "probability": 0.1, "sides": ["client"]},
//	  "cpu":     {"share": 0.3, "duration": "30s"}
//	}
//
// Durations are Go duration strings. An omitted or null section is off; an
// omitted probability means 1; omitted or empty sides mean both sides;
// "error" takes either "status" or "drop": true. "until" in "cpu" is output
// only and ignored on input, so a GET body can be PUT back unchanged.
//
// Decoding is strict: unknown or duplicate fields, wrong types, trailing data
// and out-of-range values are all rejected with a *FieldError naming the
// first offending field in document order (Field "" when the input is not
// JSON or not an object).
func ParseSettings(data []byte) (Settings, error) {
	if !json.Valid(data) {
		return Settings{}, fieldErr("", "body is not valid JSON")
	}
	var s Settings
	err := eachField(data, "", func(key, path string, raw json.RawMessage) error {
		if isNull(raw) {
			return nil
		}
		var err error
		switch key {
		// Each section is checked as soon as it is read, so the error names
		// the first offending field in document order.
		case "latency":
			if s.Latency, err = parseLatency(raw, path); err == nil {
				err = s.Latency.validate()
			}
		case "error":
			if s.Error, err = parseError(raw, path); err == nil {
				err = s.Error.validate()
			}
		case "cpu":
			if s.CPU, err = parseCPU(raw, path); err == nil {
				err = s.CPU.validate()
			}
		default:
			return fieldErr(path, "unknown field")
		}
		return err
	})
	if err != nil {
		return Settings{}, err
	}
	if err := s.Validate(); err != nil {
		return Settings{}, err
	}
	return s, nil
}

func parseLatency(raw json.RawMessage, section string) (*Latency, error) {
	l := &Latency{Probability: 1}
	err := eachField(raw, section, func(key, path string, raw json.RawMessage) error {
		var err error
		switch key {
		case "fixed":
			if l.Fixed, err = parseDuration(raw, path); err == nil {
				err = validFixed(path, l.Fixed)
			}
		case "jitter":
			if l.Jitter, err = parseDuration(raw, path); err == nil {
				err = validFixed(path, l.Jitter)
			}
		case "probability":
			if l.Probability, err = parseNumber(raw, path); err == nil {
				err = validProbability(path, l.Probability)
			}
		case "sides", "path_prefix":
			err = parseScope(&l.Scope, key, raw, path)
		default:
			err = fieldErr(path, "unknown field")
		}
		return err
	})
	return l, err
}

func parseError(raw json.RawMessage, section string) (*ErrorFault, error) {
	e := &ErrorFault{Probability: 1}
	err := eachField(raw, section, func(key, path string, raw json.RawMessage) error {
		var err error
		switch key {
		case "status":
			// ParseInt accepts exactly the JSON integers (no fraction,
			// no exponent), so 503.0 and 5e2 are refused as well.
			n, perr := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 32)
			if perr != nil {
				return fieldErr(path, "must be an integer")
			}
			e.Status = int(n)
			return validStatus(path, e.Status)
		case "drop":
			if isNull(raw) || json.Unmarshal(raw, &e.Drop) != nil {
				return fieldErr(path, "must be true or false")
			}
		case "probability":
			if e.Probability, err = parseNumber(raw, path); err == nil {
				err = validProbability(path, e.Probability)
			}
		case "sides", "path_prefix":
			err = parseScope(&e.Scope, key, raw, path)
		default:
			err = fieldErr(path, "unknown field")
		}
		return err
	})
	return e, err
}

func parseCPU(raw json.RawMessage, section string) (*CPUBurn, error) {
	c := &CPUBurn{}
	err := eachField(raw, section, func(key, path string, raw json.RawMessage) error {
		var err error
		switch key {
		case "share":
			if c.Share, err = parseNumber(raw, path); err == nil {
				err = validShare(path, c.Share)
			}
		case "duration":
			if c.Duration, err = parseDuration(raw, path); err == nil {
				err = validBurnDuration(path, c.Duration)
			}
		case "until":
			// Output only: ignored, so GET output round-trips through PUT.
		default:
			err = fieldErr(path, "unknown field")
		}
		return err
	})
	return c, err
}

func parseScope(s *Scope, key string, raw json.RawMessage, path string) error {
	if key == "path_prefix" {
		if isNull(raw) || json.Unmarshal(raw, &s.PathPrefix) != nil {
			return fieldErr(path, "must be a string")
		}
		return validPrefix(path, s.PathPrefix)
	}
	var sides []json.RawMessage
	if isNull(raw) || json.Unmarshal(raw, &sides) != nil {
		return fieldErr(path, "must be an array of %q and %q", Server, Client)
	}
	s.Sides = make([]Side, 0, len(sides))
	for i, raw := range sides {
		var side string
		if isNull(raw) || json.Unmarshal(raw, &side) != nil {
			return fieldErr(path+"["+strconv.Itoa(i)+"]", "must be %q or %q", Server, Client)
		}
		if err := validSide(path+"["+strconv.Itoa(i)+"]", Side(side)); err != nil {
			return err
		}
		s.Sides = append(s.Sides, Side(side))
	}
	if len(s.Sides) == 0 {
		s.Sides = nil // [] and omitted both mean "both sides"
	}
	return nil
}

func parseDuration(raw json.RawMessage, path string) (time.Duration, error) {
	var s string
	if isNull(raw) || json.Unmarshal(raw, &s) != nil {
		return 0, fieldErr(path, `must be a duration string such as "200ms"`)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fieldErr(path, `must be a duration string such as "200ms"`)
	}
	return d, nil
}

func parseNumber(raw json.RawMessage, path string) (float64, error) {
	var f float64
	if isNull(raw) || json.Unmarshal(raw, &f) != nil {
		return 0, fieldErr(path, "must be a number")
	}
	return f, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// eachField calls fn for every member of the JSON object in data, in
// document order, rejecting non-objects and duplicate keys. data must be
// valid JSON (ParseSettings checks once, up front).
func eachField(data []byte, prefix string, fn func(key, path string, raw json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fieldErr(prefix, "must be a JSON object")
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fieldErr(prefix, "body is not valid JSON")
		}
		key, _ := tok.(string)
		path := key
		if prefix != "" {
			path = prefix + "." + key
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fieldErr(path, "body is not valid JSON")
		}
		if seen[key] {
			return fieldErr(path, "duplicate field")
		}
		seen[key] = true
		if err := fn(key, path, raw); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return fieldErr(prefix, "body is not valid JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fieldErr("", "unexpected data after the JSON object")
	}
	return nil
}
