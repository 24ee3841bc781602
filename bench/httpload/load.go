package httpload

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/httpapi/callbacksig"
)

// request is one prepared HTTP request: everything that costs CPU on the
// client (JSON encoding, the HMAC) is done before the clock starts, so the
// load generator, which shares the cores with the server, spends as little
// as it can while measuring.
type request struct {
	path string
	body []byte
	sig  string // X-Orderflow-Signature, "" for none
}

// driveResult is what one workload run saw from the client side.
type driveResult struct {
	sent     int             // requests answered with the wanted status
	retries  int             // 429/503 answers retried
	errors   int             // other statuses and transport errors
	firstErr string          // the first of those, for the report
	lat      []time.Duration // per request, retries included, sorted
	elapsed  time.Duration   // first request sent to last answer read
	ids      [][]byte        // created order ids, when collecting
}

// driver sends prepared requests over one shared, tuned transport.
type driver struct {
	base   string
	client *http.Client
	conns  int
}

func newDriver(base string, conns int) *driver {
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		// Plain HTTP/1.1 keep-alive, one request per connection at a time:
		// 64 connections means 64 requests in flight.
		ForceAttemptHTTP2: false,
	}
	return &driver{base: base, client: &http.Client{Transport: tr}, conns: conns}
}

func (d *driver) close() { d.client.CloseIdleConnections() }

// drive sends reqs with d.conns concurrent workers until all are sent (or,
// when deadline is not zero, until it passes), expecting status want.
// When cycle is set the slice is reused round-robin, so only the deadline
// ends the run. collect keeps the "id" of each answer (created orders).
func (d *driver) drive(ctx context.Context, reqs []request, cycle bool, deadline time.Time, want int, collect bool) driveResult {
	var (
		next atomic.Int64
		mu   sync.Mutex
		res  driveResult
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range d.conns {
		wg.Go(func() {
			var (
				local driveResult
				buf   bytes.Buffer
			)
			for ctx.Err() == nil {
				if !deadline.IsZero() && time.Now().After(deadline) {
					break
				}
				i := int(next.Add(1) - 1)
				if i >= len(reqs) {
					if !cycle {
						break
					}
					i %= len(reqs)
				}
				t0 := time.Now()
				status, err := d.once(ctx, reqs[i], &buf, &local)
				local.lat = append(local.lat, time.Since(t0))
				switch {
				case err == nil && status == want:
					local.sent++
					if collect {
						if id := orderID(buf.Bytes()); id != nil {
							local.ids = append(local.ids, id)
						}
					}
				default:
					local.errors++
					if local.firstErr == "" {
						if err != nil {
							local.firstErr = err.Error()
						} else {
							local.firstErr = fmt.Sprintf("status %d: %.200s", status, buf.String())
						}
					}
				}
			}
			mu.Lock()
			res.sent += local.sent
			res.retries += local.retries
			res.errors += local.errors
			if res.firstErr == "" {
				res.firstErr = local.firstErr
			}
			res.lat = append(res.lat, local.lat...)
			res.ids = append(res.ids, local.ids...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.lat)
	return res
}

// once sends r until it gets an answer other than 429/503, which it retries
// after a short jittered pause: the service answers those only when nothing
// was queued, so a retry cannot record twice. It honours neither
// Retry-After's full second (that would measure the pause, not the
// service) nor gives up; every retry is counted and reported.
func (d *driver) once(ctx context.Context, r request, buf *bytes.Buffer, local *driveResult) (int, error) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.base+r.path, bytes.NewReader(r.body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		if r.sig != "" {
			req.Header.Set(callbacksig.Header, r.sig)
		}
		resp, err := d.client.Do(req)
		if err != nil {
			return 0, err
		}
		buf.Reset()
		// Drain fully, then close: the connection goes back to the pool.
		_, err = io.Copy(buf, resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
			return resp.StatusCode, nil
		}
		local.retries++
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Millisecond + rand.N(4*time.Millisecond)):
		}
	}
}

// orderID finds the "id" of an order answer without a full decode: the
// order's JSON starts with it (httpapi encodes orderflow.Order, whose first
// field is ID).
func orderID(b []byte) []byte {
	const key = `"id":"`
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return nil
	}
	rest := b[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return bytes.Clone(rest[:j])
}

// percentile returns the p-th percentile (0..1) of sorted durations, by the
// nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(k, 0), len(sorted)-1)]
}

func signFor(secret []byte, t time.Time, body []byte) string {
	return callbacksig.Sign(secret, t, body)
}
