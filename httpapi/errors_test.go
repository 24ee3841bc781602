package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/orderflow/orderflow"
)

func TestWriteErrorMapsBareDeadline(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"Deadline", fmt.Errorf("store: %w", context.DeadlineExceeded), 504, "deadline_exceeded"},
		{"Coded", orderflow.Errorf(orderflow.EConflict, "x"), 409, "conflict"},
		{"Plain", errors.New("boom"), 500, "internal"},
		{"Nil", nil, 500, "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			WriteError(w, tt.err)
			var b ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
				t.Fatal(err)
			}
			if w.Code != tt.status || b.Error.Code != tt.code {
				t.Errorf("%d %s, want %d %s", w.Code, b.Error.Code, tt.status, tt.code)
			}
			if tt.code == "internal" && b.Error.Message != "internal error" {
				t.Errorf("internal detail leaked: %q", b.Error.Message)
			}
		})
	}
}

func TestWriteErrorOutsideOurMuxAddsNoHeader(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, orderflow.Errorf(orderflow.ENotFound, "x"))
	if h := w.Header().Get(codeHeader); h != "" {
		t.Errorf("internal header %q on a plain writer", h)
	}
}
