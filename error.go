// Package orderflow is the domain of the order service: orders and their state
// machine, risk decisions and the callbacks that carry them, the coded error
// that every layer speaks, and the interfaces that adapters implement.
//
// It imports no adapter. Storage, buses, locks and HTTP live in packages beside
// it and import it; cmd/orderflow wires them together.
package orderflow

import (
	"errors"
	"fmt"
)

// Error codes. Each maps once to an HTTP status (httpapi) and once to the
// error_code label of orderflow_errors_total (telemetry). The set is closed:
// API.md lists it and clients switch on it.
const (
	EInvalid           = "invalid_argument"
	EUnauthenticated   = "unauthenticated"
	ENotFound          = "not_found"
	EConflict          = "conflict"
	EPayloadTooLarge   = "payload_too_large"
	EUnsupportedMedia  = "unsupported_media_type"
	EResourceExhausted = "resource_exhausted"
	EInternal          = "internal"
	EUnavailable       = "unavailable"
	EDeadlineExceeded  = "deadline_exceeded"
)

// Codes lists every error code, in the order API.md gives them.
var Codes = []string{
	EInvalid, EUnauthenticated, ENotFound, EConflict, EPayloadTooLarge,
	EUnsupportedMedia, EResourceExhausted, EInternal, EUnavailable, EDeadlineExceeded,
}

// Error is the one error type that crosses package boundaries with meaning for
// the caller. Message is safe to show to a client; Field names the offending
// JSON path for invalid_argument. Err, when set, is the cause: it is logged,
// never shown.
type Error struct {
	Code    string
	Message string
	Field   string
	Err     error
}

func (e *Error) Error() string {
	msg := e.Code + ": " + e.Message
	if e.Field != "" {
		msg += " (field " + e.Field + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap exposes the cause to errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an invalid_argument error naming the offending field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with the given code whose cause is err.
func Wrap(code string, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain. A nil error
// has no code; anything else without one is internal, so an unexpected failure
// never leaks as a client error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the client-safe message of err. Internal errors get a
// generic message: their details belong in the log, not on the wire.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != EInternal {
		return e.Message
	}
	return "internal error"
}

// ErrorField returns the offending field of an invalid_argument error, or "".
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
