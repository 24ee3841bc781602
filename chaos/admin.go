package chaos

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
)

// maxSettingsBytes bounds a PUT body; real settings are a few hundred bytes.
const maxSettingsBytes = 64 << 10

// Handler serves the admin endpoint (mounted at /admin/chaos on the admin
// listener, never the public one):
//
//	GET  current settings as JSON (see ParseSettings for the form)
//	PUT  replace all settings; strict JSON, Content-Type: application/json.
//	     200 with the new settings; 400 invalid_argument naming the field;
//	     413 payload_too_large; 415 unsupported_media_type.
//
// Every accepted PUT is logged with the old and new settings and the
// caller's address. For example:
//
//	curl -X PUT -H 'Content-Type: application/json' \
//	     -d '{"error":{"status":503,"probability":0.1}}' localhost:6060/admin/chaos
func (inj *Injector) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			writeJSON(w, http.StatusOK, inj.Settings())
		case http.MethodPut:
			inj.put(w, r)
		default:
			w.Header().Set("Allow", "GET, HEAD, PUT")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	})
}

func (inj *Injector) put(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeAPIError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json", "")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSettingsBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeAPIError(w, http.StatusRequestEntityTooLarge, "payload_too_large", "settings body over 64 KiB", "")
			return
		}
		writeAPIError(w, http.StatusBadRequest, "invalid_argument", "reading body: "+err.Error(), "")
		return
	}
	s, err := ParseSettings(body)
	if err == nil {
		err = inj.set(s, slog.String("remote", r.RemoteAddr))
	}
	if fe, ok := errors.AsType[*FieldError](err); ok {
		writeAPIError(w, http.StatusBadRequest, "invalid_argument", fe.Message, fe.Field)
		return
	}
	if err != nil { // ErrClosed: the service is shutting down
		w.Header().Set("Retry-After", "1")
		writeAPIError(w, http.StatusServiceUnavailable, "unavailable", err.Error(), "")
		return
	}
	writeJSON(w, http.StatusOK, inj.Settings())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client is gone if this fails
}

type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Field   *string `json:"field,omitempty"`
}

func writeAPIError(w http.ResponseWriter, status int, code, msg, field string) {
	body := apiErrorBody{Code: code, Message: msg}
	if code == "invalid_argument" {
		body.Field = &field // required by the API for invalid_argument, even ""
	}
	writeJSON(w, status, apiError{body})
}
