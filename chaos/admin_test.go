package chaos_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/chaos"
)

func doAdmin(h http.Handler, method, contentType, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/admin/chaos", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHandlerPutThenGet(t *testing.T) {
	var logs bytes.Buffer
	inj := chaos.New(chaos.Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	defer inj.Close()
	h := inj.Handler()

	if rec := doAdmin(h, http.MethodGet, "", ""); rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != "{}" {
		t.Fatalf("initial GET = %d %s, want 200 {}", rec.Code, rec.Body)
	}
	put := `{"latency":{"fixed":"200ms","jitter":"50ms","probability":0.5,"sides":["server"],"path_prefix":"/v1/orders"},
	         "error":{"status":503,"probability":0.1}}`
	rec := doAdmin(h, http.MethodPut, "application/json; charset=utf-8", put)
	if rec.Code != 200 {
		t.Fatalf("PUT = %d %s", rec.Code, rec.Body)
	}
	want := `{"latency":{"fixed":"200ms","jitter":"50ms","probability":0.5,"sides":["server"],"path_prefix":"/v1/orders"},"error":{"status":503,"probability":0.1}}`
	if got := strings.TrimSpace(rec.Body.String()); got != want {
		t.Errorf("PUT answered\n %s\nwant\n %s", got, want)
	}
	if got := strings.TrimSpace(doAdmin(h, http.MethodGet, "", "").Body.String()); got != want {
		t.Errorf("GET after PUT = %s", got)
	}
	// The GET output is valid PUT input.
	if rec := doAdmin(h, http.MethodPut, "application/json", want); rec.Code != 200 {
		t.Errorf("PUT of GET output = %d %s", rec.Code, rec.Body)
	}

	var entry struct {
		Msg string
		Old any
		New struct {
			Error struct{ Status int }
		}
		Remote string
	}
	first, _, _ := bytes.Cut(logs.Bytes(), []byte("\n"))
	if err := json.Unmarshal(first, &entry); err != nil {
		t.Fatalf("log %s: %v", first, err)
	}
	if entry.Msg != "chaos settings changed" || entry.Old != "off" || entry.New.Error.Status != 503 || entry.Remote == "" {
		t.Errorf("log entry %s lacks old/new settings or remote", first)
	}
}

func TestHandlerRejects(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		method                  string
		wantStatus              int
		wantCode, wantField     string
	}{
		{"SyntaxError", "application/json", `{"latency":`, "PUT", 400, "invalid_argument", ""},
		{"NotAnObject", "application/json", `[]`, "PUT", 400, "invalid_argument", ""},
		{"TrailingData", "application/json", `{} {}`, "PUT", 400, "invalid_argument", ""},
		{"UnknownSection", "application/json", `{"latancy":{}}`, "PUT", 400, "invalid_argument", "latancy"},
		{"UnknownField", "application/json", `{"latency":{"fixed":"1s","bogus":1}}`, "PUT", 400, "invalid_argument", "latency.bogus"},
		{"DuplicateField", "application/json", `{"error":{"status":503,"status":500}}`, "PUT", 400, "invalid_argument", "error.status"},
		{"ProbabilityAboveOne", "application/json", `{"latency":{"fixed":"1s","probability":1.5}}`, "PUT", 400, "invalid_argument", "latency.probability"},
		{"NegativeProbability", "application/json", `{"error":{"status":503,"probability":-0.1}}`, "PUT", 400, "invalid_argument", "error.probability"},
		{"DurationNotString", "application/json", `{"latency":{"fixed":200}}`, "PUT", 400, "invalid_argument", "latency.fixed"},
		{"DurationGarbage", "application/json", `{"latency":{"fixed":"fast"}}`, "PUT", 400, "invalid_argument", "latency.fixed"},
		{"LatencyTooLong", "application/json", `{"latency":{"fixed":"1h"}}`, "PUT", 400, "invalid_argument", "latency.fixed"},
		{"StatusNotError", "application/json", `{"error":{"status":200}}`, "PUT", 400, "invalid_argument", "error.status"},
		{"StatusFraction", "application/json", `{"error":{"status":503.5}}`, "PUT", 400, "invalid_argument", "error.status"},
		{"StatusAndDrop", "application/json", `{"error":{"status":503,"drop":true}}`, "PUT", 400, "invalid_argument", "error.status"},
		{"BadSide", "application/json", `{"error":{"status":503,"sides":["server","edge"]}}`, "PUT", 400, "invalid_argument", "error.sides[1]"},
		{"BadPathPrefix", "application/json", `{"error":{"status":503,"path_prefix":"v1"}}`, "PUT", 400, "invalid_argument", "error.path_prefix"},
		{"ShareAboveOne", "application/json", `{"cpu":{"share":2,"duration":"1s"}}`, "PUT", 400, "invalid_argument", "cpu.share"},
		{"BurnWithoutDuration", "application/json", `{"cpu":{"share":0.3}}`, "PUT", 400, "invalid_argument", "cpu.duration"},
		{"FirstFieldInDocumentOrder", "application/json", `{"error":{"status":1},"latency":{"fixed":"x"}}`, "PUT", 400, "invalid_argument", "error.status"},
		{"FormEncoded", "application/x-www-form-urlencoded", `{}`, "PUT", 415, "unsupported_media_type", ""},
		{"TooLarge", "application/json", `{"error":{"status":503,"path_prefix":"/` + strings.Repeat("a", 70<<10) + `"}}`, "PUT", 413, "payload_too_large", ""},
		{"WrongMethod", "", "", "POST", 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inj := chaos.New(chaos.Config{Logger: slog.New(slog.DiscardHandler)})
			defer inj.Close()
			rec := doAdmin(inj.Handler(), tt.method, tt.contentType, tt.body)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d (%s), want %d", rec.Code, rec.Body, tt.wantStatus)
			}
			if tt.wantCode == "" {
				return
			}
			var got struct {
				Error struct {
					Code, Message string
					Field         *string
				}
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if got.Error.Code != tt.wantCode || got.Error.Message == "" {
				t.Errorf("error = %+v, want code %s with a message", got.Error, tt.wantCode)
			}
			if tt.wantCode == "invalid_argument" && (got.Error.Field == nil || *got.Error.Field != tt.wantField) {
				t.Errorf("field = %v, want %q (body %s)", got.Error.Field, tt.wantField, rec.Body)
			}
			if s := inj.Settings(); !reflect.DeepEqual(s, chaos.Settings{}) {
				t.Errorf("a rejected PUT changed the settings to %+v", s)
			}
		})
	}
}

func TestParseSettingsDefaults(t *testing.T) {
	s, err := chaos.ParseSettings([]byte(`{"latency":{"fixed":"10ms"},"error":{"drop":true,"sides":[]},"cpu":null}`))
	if err != nil {
		t.Fatal(err)
	}
	want := chaos.Settings{
		Latency: &chaos.Latency{Fixed: 10 * time.Millisecond, Probability: 1},
		Error:   &chaos.ErrorFault{Drop: true, Probability: 1},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %+v %+v, want omitted probability = 1, [] sides = both, null section = off", s.Latency, s.Error)
	}
}

// FuzzParseSettings checks the PUT decoder on arbitrary input: it never
// panics, it fails only with a *FieldError, and what it accepts is valid and
// survives a round trip through MarshalJSON unchanged.
func FuzzParseSettings(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"latency":{"fixed":"200ms","jitter":"50ms","probability":0.5,"sides":["server"],"path_prefix":"/v1/orders"}}`,
		`{"error":{"status":503,"probability":0.1,"sides":["client","server"]}}`,
		`{"error":{"drop":true}}`,
		`{"cpu":{"share":0.3,"duration":"30s","until":"2026-01-01T00:00:00Z"}}`,
		`{"latency":null,"error":{"status":1e2}}`,
		`{"latency":{"fixed":"1s","fixed":"2s"}}`,
		`[1,2]`, `null`, `"x"`, ``, `{"a":`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := chaos.ParseSettings(data)
		if err != nil {
			if _, ok := errors.AsType[*chaos.FieldError](err); !ok {
				t.Fatalf("error %v (%T) is not a *FieldError", err, err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted invalid settings: %v", err)
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := chaos.ParseSettings(out)
		if err != nil {
			t.Fatalf("own output %s rejected: %v", out, err)
		}
		if s.CPU != nil {
			s.CPU.Until = time.Time{} // output only
		}
		if !reflect.DeepEqual(s, back) {
			t.Fatalf("round trip changed %s", out)
		}
	})
}
