package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/orderflow/orderflow"
)

// StatusFor maps an error code to its HTTP status: the table of API.md, in
// one place. An unknown code is 500, like internal.
func StatusFor(code string) int {
	switch code {
	case orderflow.EInvalid:
		return http.StatusBadRequest
	case orderflow.EUnauthenticated:
		return http.StatusUnauthorized
	case orderflow.ENotFound:
		return http.StatusNotFound
	case orderflow.EConflict:
		return http.StatusConflict
	case orderflow.EPayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case orderflow.EUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case orderflow.EResourceExhausted:
		return http.StatusTooManyRequests
	case orderflow.EUnavailable:
		return http.StatusServiceUnavailable
	case orderflow.EDeadlineExceeded:
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

// ErrorBody is the body of every non-2xx answer (API.md).
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody. Field is always present for
// invalid_argument ("" when the body as a whole is at fault) and omitted for
// every other code.
type ErrorDetail struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Field   *string `json:"field,omitempty"`
}

// WriteError answers err in the error shape of API.md with the status of its
// code, adding Retry-After to 429 and 503. Internal errors are answered with a
// generic message; their detail goes to the log through the instrumenting
// middleware, which also counts orderflow_errors_total exactly once per error
// response actually sent. Handlers mounted through PublicConfig.Extra or
// AdminConfig.Extra use it too; outside this package's muxes it writes the
// same body and status, uncounted.
func WriteError(w http.ResponseWriter, err error) {
	writeError(w, err, false)
}

// writeError is WriteError; tag forces the code header even when no recorder
// is reachable from w (the deadline's 504 writes to a buffer whose header map
// is the recorder's).
func writeError(w http.ResponseWriter, err error, tag bool) {
	code := orderflow.ErrorCode(err)
	switch {
	case code == "":
		code, err = orderflow.EInternal, errors.New("httpapi: WriteError(nil)")
	case code == orderflow.EInternal && errors.Is(err, context.DeadlineExceeded):
		// A bare context error from below: the budget ran out, which the
		// client must read as "outcome unknown", not as a server bug.
		code, err = orderflow.EDeadlineExceeded, orderflow.Wrap(orderflow.EDeadlineExceeded, err, "deadline exceeded")
	}
	status := StatusFor(code)
	retryAfter := "1"
	if rec := asRecorder(w); rec != nil {
		rec.err = err
		if rec.retryAfter != "" {
			retryAfter = rec.retryAfter
		}
		tag = true
	}
	if tag {
		w.Header().Set(codeHeader, code)
	}
	if (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	d := ErrorDetail{Code: code, Message: orderflow.ErrorMessage(err)}
	if code == orderflow.EInvalid {
		f := orderflow.ErrorField(err)
		d.Field = &f
	}
	writeJSON(w, status, ErrorBody{Error: d})
}

// writeJSON answers v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var b []byte
	var err error
	switch o := v.(type) {
	case *orderJSON:
		b, err = o.appendJSON(make([]byte, 0, 512))
	case *listJSON:
		b, err = o.appendJSON(make([]byte, 0, 64+400*len(o.Orders)))
	default:
		b, err = json.Marshal(v)
	}
	if err != nil {
		// Only our own wire types come here; they always encode.
		b, status = []byte(`{"error":{"code":"internal","message":"internal error"}}`), http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
