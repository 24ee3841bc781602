package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func init() {
	Register(Experiment{
		Name:  "http-leak",
		Title: "an un-closed response body holds a connection and goroutines; MaxIdleConnsPerHost=2 under concurrency",
		Run:   runHTTPLeak,
	})
}

// connCount counts, through httptrace, the connections a client dialled and
// the ones it reused.
type connCount struct{ created, reused atomic.Int64 }

func (c *connCount) ctx(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) {
			if i.Reused {
				c.reused.Add(1)
			} else {
				c.created.Add(1)
			}
		},
	})
}

// clientConnGoroutines counts the goroutines of http.Transport connections
// (one read loop and one write loop each), from a goroutine dump; the test
// server's goroutines, in the same process, are not counted.
func clientConnGoroutines() int {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 2); err != nil {
		return -1
	}
	n := 0
	for _, g := range strings.Split(buf.String(), "\n\n") {
		if strings.Contains(g, "(*persistConn).readLoop") || strings.Contains(g, "(*persistConn).writeLoop") {
			n++
		}
	}
	return n
}

// waitConnGoroutines polls until the transport goroutines are down to want
// (they exit asynchronously after a close) or a second has passed.
func waitConnGoroutines(want int) int {
	deadline := time.Now().Add(time.Second)
	n := clientConnGoroutines()
	for n > want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		n = clientConnGoroutines()
	}
	return n
}

// httpScenario is one way of using a client, measured on its own transport.
type httpScenario struct {
	name         string
	created      int64 // connections dialled
	requests     int
	heldRoutines int // transport goroutines while the responses were held (leak) or at the end (others)
}

func get(ctx context.Context, c *http.Client, url string, cc *connCount) (*http.Response, error) {
	req, err := http.NewRequestWithContext(cc.ctx(ctx), http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	return resp, nil
}

// leakScenario issues n sequential requests and never reads or closes a
// body, then releases everything so the experiment leaves nothing behind.
func leakScenario(ctx context.Context, url string, n int) (httpScenario, error) {
	s := httpScenario{name: "sequential, body never closed", requests: n}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var cc connCount
	var held []*http.Response
	defer func() {
		for _, r := range held {
			r.Body.Close()
		}
	}()
	base := clientConnGoroutines()
	for range n {
		resp, err := get(ctx, c, url, &cc)
		if err != nil {
			return s, err
		}
		held = append(held, resp) // the leak: nobody reads or closes it
	}
	s.created = cc.created.Load()
	s.heldRoutines = clientConnGoroutines() - base
	return s, nil
}

// poolScenario issues workers*rounds requests, every body drained and
// closed, with the given MaxIdleConnsPerHost (0 = default). Steady: workers
// goroutines loop over their requests independently. Fan-out: each round
// starts workers requests at once and waits for all of them, as a handler
// calling several backends does — responses then come back together.
func poolScenario(ctx context.Context, name, url string, workers, rounds, maxIdle int, fanOut bool) (httpScenario, error) {
	s := httpScenario{name: name, requests: workers * rounds}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	tr.MaxIdleConnsPerHost = maxIdle
	c := &http.Client{Transport: tr}
	var cc connCount
	one := func() error {
		resp, err := get(ctx, c, url, &cc)
		if err != nil {
			return err
		}
		// The fix: drain to EOF so the connection goes back to the pool,
		// then close.
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("read body: %w", err)
		}
		return nil
	}
	batches, perBatch := 1, rounds
	if fanOut {
		batches, perBatch = rounds, 1
	}
	errs := make(chan error, workers*batches)
	for range batches {
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() { // owned: the batch waits for it
				defer wg.Done()
				for range perBatch {
					if err := one(); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	close(errs)
	if err := <-errs; err != nil {
		return s, err
	}
	s.created = cc.created.Load()
	s.heldRoutines = clientConnGoroutines()
	return s, nil
}

// httpFindings is everything one http-leak run observed.
type httpFindings struct {
	n, workers             int
	leak, fixed            httpScenario
	pools                  []httpScenario // steady default, steady tuned, fan-out default, fan-out tuned
	base, afterLeak, final int            // transport goroutines: before, once leaked bodies closed, at the end
}

func runHTTPLeak(ctx context.Context, opt Options) (Result, error) {
	res := Result{
		Name: "http-leak",
		Claim: "A response body that is not closed keeps its connection and a goroutine per request alive; " +
			"the default MaxIdleConnsPerHost of 2 forces new connections under concurrency.",
	}
	f := httpFindings{n: 100, workers: 8}
	per := 50
	if opt.Quick {
		f.n, f.workers, per = 10, 4, 10
	}
	body := bytes.Repeat([]byte("x"), 1024)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(d) // a slow backend: concurrent requests overlap and finish together
		}
		w.Write(body)
	}))
	defer srv.Close()
	if err := f.run(ctx, srv.URL, per); err != nil {
		return res, fmt.Errorf("http-leak: %w", err)
	}
	return httpVerdict(res, f), nil
}

// run measures the scenarios one after another, each on its own transport,
// waiting between them for the previous one's goroutines to end.
func (f *httpFindings) run(ctx context.Context, url string, per int) error {
	f.base = waitConnGoroutines(0)
	var err error
	if f.leak, err = leakScenario(ctx, url, f.n); err != nil {
		return err
	}
	f.afterLeak = waitConnGoroutines(f.base)
	if f.fixed, err = poolScenario(ctx, "sequential, body drained and closed", url, 1, f.n, 0, false); err != nil {
		return err
	}
	waitConnGoroutines(f.base)
	for _, fanOut := range []bool{false, true} {
		for _, maxIdle := range []int{0, f.workers} {
			idle := fmt.Sprintf("MaxIdleConnsPerHost=%d", maxIdle)
			if maxIdle == 0 {
				idle = fmt.Sprintf("MaxIdleConnsPerHost default (%d)", http.DefaultMaxIdleConnsPerHost)
			}
			pattern := fmt.Sprintf("%d steady workers", f.workers)
			if fanOut {
				pattern = fmt.Sprintf("fan-out bursts of %d", f.workers)
			}
			name := fmt.Sprintf("%s, server latency 1ms, drained+closed, %s", pattern, idle)
			sc, err := poolScenario(ctx, name, url+"?sleep=1ms", f.workers, per, maxIdle, fanOut)
			if err != nil {
				return err
			}
			f.pools = append(f.pools, sc)
			waitConnGoroutines(f.base)
		}
	}
	f.final = waitConnGoroutines(f.base)
	return nil
}

func httpVerdict(res Result, f httpFindings) Result {
	steadyDef, steadyTuned, def, tuned := f.pools[0], f.pools[1], f.pools[2], f.pools[3]
	var tb strings.Builder
	tb.WriteString("| scenario | requests | connections dialled | transport goroutines |\n|---|---:|---:|---:|\n")
	for _, s := range append([]httpScenario{f.leak, f.fixed}, f.pools...) {
		fmt.Fprintf(&tb, "| %s | %d | %d | %d |\n", s.name, s.requests, s.created, s.heldRoutines)
		res.Measurements = append(res.Measurements,
			Measurement{Name: "connections dialled: " + s.name, Median: float64(s.created), Unit: "conns", Runs: 1})
	}
	res.Table = tb.String()
	perResp := float64(f.leak.heldRoutines) / float64(f.n)
	res.Measurements = append(res.Measurements,
		Measurement{Name: "transport goroutines per leaked response", Median: perResp, Unit: "goroutines", Runs: 1},
		Measurement{Name: "transport goroutines left once leaked bodies were closed", Median: float64(f.afterLeak - f.base), Unit: "goroutines", Runs: 1},
		Measurement{Name: "transport goroutines left at the end (idle conns closed)", Median: float64(f.final - f.base), Unit: "goroutines", Runs: 1},
	)

	leakHolds := f.leak.created == int64(f.n) && f.leak.heldRoutines >= f.n
	fixHolds := f.fixed.created == 1
	poolHolds := def.created > tuned.created && def.created > int64(http.DefaultMaxIdleConnsPerHost)
	// "Under concurrency" holds without qualification only if steady
	// concurrent workers overflow the pool too.
	steadyHolds := steadyDef.created > int64(2*f.workers)
	switch {
	case leakHolds && fixHolds && poolHolds && steadyHolds:
		res.Verdict = Holds
	case leakHolds || poolHolds || fixHolds:
		res.Verdict = Depends
	default:
		res.Verdict = Refuted
	}
	pattern := "the pool overflowed under steady concurrency as well as in bursts"
	if !steadyHolds {
		pattern = "the pool overflows when responses finish together, not merely under concurrency"
	}
	res.Condition = fmt.Sprintf("net/http of %s over loopback: %d un-closed responses dialled %d connections and held %d transport goroutines "+
		"(%.1f per response: a read loop and a write loop); drained and closed, %d requests used %d connection(s); "+
		"fan-out bursts of %d requests to a server with 1 ms latency dialled %d connections with the default idle pool of %d per host and %d with %d; "+
		"%d steady workers dialled %d and %d — %s",
		runtime.Version(), f.n, f.leak.created, f.leak.heldRoutines, perResp, f.n, f.fixed.created,
		f.workers, def.created, http.DefaultMaxIdleConnsPerHost, tuned.created, f.workers, f.workers, steadyDef.created, steadyTuned.created, pattern)
	res.Notes = "The leak is per response, not per request: the connection returns to the pool when the body is read to EOF or closed. " +
		"A server in another process would add its own goroutine per connection; the test server here runs in this process and is not counted. " +
		"Connections closed because the idle pool is full go to TIME_WAIT on a real network, which is how this shows up in production."
	return res
}
