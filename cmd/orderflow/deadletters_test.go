package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// answer409 stands in for an order service that holds a different verdict:
// while on, every callback is answered 409 without reaching the network.
type answer409 struct {
	next http.RoundTripper
	on   atomic.Bool
}

func (a *answer409) RoundTrip(r *http.Request) (*http.Response, error) {
	if !a.on.Load() {
		return a.next.RoundTrip(r)
	}
	if r.Body != nil {
		r.Body.Close()
	}
	body := `{"error":{"code":"conflict","message":"a different verdict is recorded"}}`
	return &http.Response{
		StatusCode: http.StatusConflict, Status: "409 Conflict", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: r,
	}, nil
}

// TestServeConflictDeadLettersAndRedrive: a 409 is permanent, so the event
// goes to the dead letters at once and the conflict is counted; the
// operator lists it and redrives it with `orderflow deadletters`, and once the
// order service agrees the order is decided.
func TestServeConflictDeadLettersAndRedrive(t *testing.T) {
	conflict := &answer409{}
	conflict.on.Store(true)
	s := startServe(t, func(a *app) {
		a.wrapCallbackTransport = func(rt http.RoundTripper) http.RoundTripper { conflict.next = rt; return conflict }
	})
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	id := createOrder(t, client, s.public, "u_dead")
	waitFor(t, 30*time.Second, "dead letter", func() (bool, int, string) {
		// The bus creates its tables when its consumer starts, which may be
		// after the order was created.
		if count(t, s.app, `SELECT count(*) FROM sqlite_master WHERE name = 'bus_dead_letters'`) == 0 {
			return false, 0, "bus tables not created yet"
		}
		n := count(t, s.app, `SELECT count(*) FROM bus_dead_letters WHERE order_id = ?`, id)
		return n == 1, n, fmt.Sprintf("%d dead letters", n)
	})
	if n := s.app.engineMetrics.CallbackCount("conflict"); n != 1 {
		t.Errorf("%v conflicts counted, want 1", n)
	}
	admin := strings.TrimPrefix(s.admin, "http://")
	cli := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		argv := append([]string{"orderflow", "deadletters"}, args...)
		if err := run(context.Background(), append(argv, "--admin-addr", admin), func(string) string { return "" }, &out, io.Discard); err != nil {
			t.Fatalf("orderflow %v: %v", args, err)
		}
		return out.String()
	}
	list := cli("list")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], id) || !strings.Contains(lines[1], "409") {
		t.Fatalf("list:\n%s", list)
	}
	dlID := strings.Fields(lines[1])[0]

	conflict.on.Store(false) // the order service agrees now
	if out := cli("redrive", dlID); strings.TrimSpace(out) != "redriven "+dlID {
		t.Fatalf("redrive: %q", out)
	}
	waitFor(t, 30*time.Second, "redriven order decided", func() (bool, int, string) {
		n := count(t, s.app, `SELECT count(*) FROM inbox WHERE order_id = ? AND outcome IS NOT NULL`, id)
		return n == 1, n, "not applied yet"
	})
	if out := cli("list"); len(strings.Split(strings.TrimSpace(out), "\n")) != 1 {
		t.Errorf("dead letters left after the redrive:\n%s", out)
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"orderflow", "deadletters", "redrive", "999999", "--admin-addr", admin},
		func(string) string { return "" }, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("redrive of an unknown id: %v, want not_found", err)
	}
}
