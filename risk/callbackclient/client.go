// Package callbackclient sends the risk engine's verdicts to the order
// service: POST /v1/risk/callbacks, signed with callbacksig, through one tuned
// client from httpclient and a circuit breaker around the order endpoint.
//
// A Send is one attempt. It classifies the answer so that the caller (the
// engine's retry loop) knows what to do: Delivered (2xx: stop, acknowledge),
// Retry (429, 503, other 5xx, a network error, a timeout: back off, honouring
// RetryAfter), Permanent (a 4xx no retry can fix: dead-letter), Conflict (409:
// the order service holds a different verdict under this key; dead-letter and
// count, since it means our decision store and theirs disagree) and
// BreakerOpen (the breaker refused the call without touching the network:
// leave the event unacknowledged, the bus brings it back later).
//
// Every response body is drained (up to a bound) and closed, so the
// connection goes back to the pool.
package callbackclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/breaker"
	"github.com/orderflow/orderflow/httpapi/callbacksig"
)

// Path is where the order service takes callbacks (API.md).
const Path = "/v1/risk/callbacks"

// maxDrain bounds what is read of a response body before closing it: an
// answer of the order service is a few hundred bytes, and a hostile or broken
// peer must not make us read forever just to reuse a connection.
const maxDrain = 64 << 10

// Class is what one attempt's outcome asks the caller to do.
type Class int

const (
	// Delivered: a 2xx; the order service recorded the verdict (202) or had
	// it already (200). Acknowledge.
	Delivered Class = iota + 1
	// Retry: 429, 503, another 5xx, a network error or a timeout. Try again
	// after a back-off (at least RetryAfter when the server sent one).
	Retry
	// Permanent: a 4xx that no retry can fix (400, 401, 404, 413, 415, and
	// any other 4xx but 408, 409 and 429). Dead-letter.
	Permanent
	// Conflict: 409, a different verdict is recorded under the same key.
	// Dead-letter and count: a redelivery cannot fix it.
	Conflict
	// BreakerOpen: the breaker refused the call; nothing was sent. Leave the
	// event unacknowledged.
	BreakerOpen
)

func (c Class) String() string {
	switch c {
	case Delivered:
		return "delivered"
	case Retry:
		return "retry"
	case Permanent:
		return "permanent"
	case Conflict:
		return "conflict"
	case BreakerOpen:
		return "breaker_open"
	}
	return "unknown"
}

// ClassifyStatus maps an HTTP status of the callback endpoint to a Class.
func ClassifyStatus(status int) Class {
	switch {
	case status >= 200 && status < 300:
		return Delivered
	case status == http.StatusConflict:
		return Conflict
	case status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500:
		return Retry
	case status >= 400:
		return Permanent
	}
	// 1xx or 3xx: the order service sends neither; treat as transient.
	return Retry
}

// Result is the outcome of one attempt.
type Result struct {
	Class Class
	// Status is the HTTP status, 0 when no response came.
	Status int
	// Duplicate is true for a 200: the verdict was recorded before.
	Duplicate bool
	// RetryAfter is the server's Retry-After, 0 when absent.
	RetryAfter time.Duration
	// Latency is how long the attempt took.
	Latency time.Duration
	// Err says why an attempt did not deliver (nil for Delivered).
	Err error
}

// Config wires a Client. HTTP, BaseURL and Secrets are required.
type Config struct {
	// HTTP is the client to send with: build it with httpclient.New, with
	// otelhttp, deadline.Transport and chaos layered through its Wrap.
	HTTP *http.Client
	// BaseURL is the order service, e.g. http://127.0.0.1:8080 (no path).
	BaseURL string
	// Secrets sign the callback; the first one signs, the others are
	// accepted by receivers during a rotation and not needed here.
	Secrets [][]byte
	// Breaker guards the order endpoint. Nil means no breaker.
	Breaker *breaker.Breaker
	// Now stamps the signature (time.Now).
	Now func() time.Time
}

// Client sends callbacks. It is safe for concurrent use.
type Client struct {
	http    *http.Client
	url     string
	secret  []byte
	breaker *breaker.Breaker
	now     func() time.Time
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.HTTP == nil:
		return nil, errors.New("callbackclient: Config.HTTP is required")
	case cfg.BaseURL == "":
		return nil, errors.New("callbackclient: Config.BaseURL is required")
	case len(cfg.Secrets) == 0 || len(cfg.Secrets[0]) == 0:
		return nil, errors.New("callbackclient: Config.Secrets is required")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Client{
		http:    cfg.HTTP,
		url:     strings.TrimRight(cfg.BaseURL, "/") + Path,
		secret:  cfg.Secrets[0],
		breaker: cfg.Breaker,
		now:     now,
	}, nil
}

// Send makes one attempt to deliver cb under ctx, which should carry the
// attempt's deadline. It never returns a Result with a zero Class.
func (c *Client) Send(ctx context.Context, cb *orderflow.Callback) Result {
	body, err := json.Marshal(cb)
	if err != nil {
		return Result{Class: Permanent, Err: fmt.Errorf("callbackclient: encode: %w", err)}
	}
	var ticket breaker.Ticket
	if c.breaker != nil {
		t, err := c.breaker.Allow()
		if err != nil {
			return Result{Class: BreakerOpen, Err: fmt.Errorf("callbackclient: %s: %w", c.url, err)}
		}
		ticket = t
	}
	start := time.Now()
	res := c.do(ctx, body)
	res.Latency = time.Since(start)
	if c.breaker != nil {
		switch {
		case res.Status != 0:
			ticket.Record(breaker.HTTPStatus(res.Status), res.Latency)
		default:
			ticket.Done(res.Err, res.Latency)
		}
	}
	return res
}

func (c *Client) do(ctx context.Context, body []byte) Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return Result{Class: Permanent, Err: fmt.Errorf("callbackclient: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(callbacksig.Header, callbacksig.Sign(c.secret, c.now(), body))
	resp, err := c.http.Do(req)
	if err != nil {
		return Result{Class: Retry, Err: fmt.Errorf("callbackclient: post: %w", err)}
	}
	defer resp.Body.Close()
	// Keep a little of an error body for the log line; drain the rest.
	var snippet []byte
	if resp.StatusCode >= 300 {
		snippet, _ = io.ReadAll(io.LimitReader(resp.Body, 512))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	res := Result{
		Class:      ClassifyStatus(resp.StatusCode),
		Status:     resp.StatusCode,
		Duplicate:  resp.StatusCode == http.StatusOK,
		RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), c.now()),
	}
	if res.Class != Delivered {
		res.Err = &StatusError{Status: resp.StatusCode, Body: string(bytes.TrimSpace(snippet))}
	}
	return res
}

// StatusError is a non-2xx answer of the order service.
type StatusError struct {
	Status int
	Body   string // the start of the error body, for the log
}

func (e *StatusError) Error() string {
	return "callbackclient: order service answered " + strconv.Itoa(e.Status) + ": " + e.Body
}

// ParseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
// Anything else, or a time in the past, is 0.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, 3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, time.Hour)
		}
	}
	return 0
}
