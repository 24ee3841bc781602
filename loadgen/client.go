package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Retry bounds. Every request here is safe to repeat (GETs, creates under
// their Idempotency-Key, labels that carry the same truth), so a request is
// retried after 429/503 (after Retry-After), 504 or a lost connection.
const (
	maxAttempts       = 5
	defaultRetryAfter = time.Second
	maxRetryAfter     = 30 * time.Second
	maxBodyRead       = 1 << 20
	conflictBackoff   = 100 * time.Millisecond
	backoffBase       = 50 * time.Millisecond
	backoffCap        = time.Second
)

// client speaks the order API. All requests share one back-off gate: a 429
// or 503 says the server as a whole wants a pause, so no request of this run
// goes out before its Retry-After has passed. Senders that wait there stay
// in flight, so the pacer counts the slots it cannot fill as dropped: the
// offered rate stays honest while the server gets its pause.
type client struct {
	base    string
	token   string
	hc      *http.Client
	timeout time.Duration
	col     *collector
	// pauseUntil is the Unix nanosecond time before which no request starts.
	pauseUntil atomic.Int64
}

// answer is a response that ended the retries: a 2xx, or an error whose
// code was counted.
type answer struct {
	status int
	body   []byte
	code   string // error.code of a non-2xx answer, "transport" without one
}

func (a answer) ok() bool { return a.status >= 200 && a.status < 300 }

// do sends one request, retrying as described on client, and counts every
// non-2xx answer under op by its error code. It returns an error only when
// ctx ended; a final failure is an answer with a code.
func (c *client) do(ctx context.Context, op, method, path string, body []byte, idemKey string) (answer, error) {
	var last answer
	for attempt := range maxAttempts {
		if attempt > 0 {
			c.col.retry()
		}
		if err := c.waitGate(ctx); err != nil {
			return last, err
		}
		a, retryAfter, err := c.once(ctx, method, path, body, idemKey)
		if err != nil && ctx.Err() != nil {
			return last, ctx.Err()
		}
		last = a
		if a.ok() {
			return a, nil
		}
		c.col.errorf(op, a.code)
		switch {
		case a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable:
			c.pause(retryAfter)
		case a.status == http.StatusGatewayTimeout || a.status == 0:
			// The outcome is unknown: the same bytes again are safe,
			// after a full-jitter backoff so that a server that is down
			// is not hammered by every sender at once.
			if !pause(ctx, nil, backoff(attempt)) {
				return last, ctx.Err()
			}
		case a.status == http.StatusConflict && attempt > 0 && idemKey != "":
			// Our earlier attempt under this key may still be in flight
			// on the server (API.md: 409 until it ends); its answer will
			// be replayed once it has.
			if !pause(ctx, nil, conflictBackoff) {
				return last, ctx.Err()
			}
		default:
			return a, nil
		}
	}
	return last, nil
}

// backoff is a full-jitter delay before retry attempt+1: uniform in
// [0, min(backoffBase·2^attempt, backoffCap)).
func backoff(attempt int) time.Duration {
	return rand.N(min(backoffBase<<attempt, backoffCap))
}

func (c *client) once(ctx context.Context, method, path string, body []byte, idemKey string) (answer, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return answer{code: "transport"}, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// Tell the server what the client will wait, so it gives up at the
	// same time instead of finishing work nobody reads (API.md).
	req.Header.Set("X-Request-Timeout-Ms", strconv.FormatInt(c.timeout.Milliseconds(), 10))
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{code: "transport"}, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyRead))
	if err != nil {
		return answer{code: "transport"}, 0, err
	}
	a := answer{status: resp.StatusCode, body: b}
	if !a.ok() {
		a.code = errorCode(resp.StatusCode, b)
	}
	return a, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), nil
}

// errorCode reads error.code from an API.md error body; an answer without
// one (a proxy's page, say) is named by its status.
func errorCode(status int, body []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
		return e.Error.Code
	}
	return "http_" + strconv.Itoa(status)
}

// parseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 10.2.3).
// Missing or unreadable means defaultRetryAfter; the result is capped at
// maxRetryAfter so a confused server cannot stall the run.
func parseRetryAfter(v string, now time.Time) time.Duration {
	d := defaultRetryAfter
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		// Capped before the multiplication, which would overflow.
		d = time.Duration(min(s, int(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(t.Sub(now), 0)
	}
	return min(d, maxRetryAfter)
}

func (c *client) pause(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := c.pauseUntil.Load()
		if cur >= until || c.pauseUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

func (c *client) waitGate(ctx context.Context) error {
	for {
		d := time.Until(time.Unix(0, c.pauseUntil.Load()))
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// postJSON marshals v and sends it with do.
func (c *client) postJSON(ctx context.Context, op, path string, v any, idemKey string) (answer, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return answer{}, fmt.Errorf("loadgen: encode %s: %w", op, err)
	}
	return c.do(ctx, op, http.MethodPost, path, body, idemKey)
}

var errNoOrder = errors.New("loadgen: answer holds no order")

// codeBadAnswer counts 2xx answers whose body is not what API.md promises.
const codeBadAnswer = "bad_answer"
