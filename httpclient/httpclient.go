// Package httpclient builds every outgoing HTTP client of the project from one
// place, so that connection pooling, timeouts and accounting are the same
// everywhere and nobody ships a client with the standard library's pool of two
// idle connections per host.
//
// A Client counts, through net/http/httptrace, the connections it creates and
// reuses, and wraps every response body to count the bodies still open. A body
// that is never closed pins its connection: under load the pool drains and the
// client dials again and again. The open-bodies gauge makes that leak visible
// in production (Prometheus) and fatal in tests (CheckBodies).
//
// Layering: Config.Wrap adds RoundTrippers between the accounting layer and
// the network, outermost first:
//
//	http.Client → accounting → Wrap[0] → Wrap[1] → … → *http.Transport → network
//
// The order the project uses is otelhttp (so the span covers everything,
// injected faults included), then the deadline transport (so the propagated
// budget is computed just before the request leaves), then chaos (closest to
// the network, where real faults happen):
//
//	httpclient.New(httpclient.Config{
//		Name: "callback",
//		Wrap: []func(http.RoundTripper) http.RoundTripper{
//			func(rt http.RoundTripper) http.RoundTripper { return otelhttp.NewTransport(rt) },
//			func(rt http.RoundTripper) http.RoundTripper { return &deadline.Transport{Base: rt} },
//			injector.Transport, // chaos: a method value fits as is
//		},
//	})
//
// Bodies of responses that a layer synthesizes (a chaos error) are counted
// too: the caller must close them like any other.
package httpclient

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Defaults applied by New to zero fields of Config. Each is chosen for a
// service that calls a handful of hosts at high concurrency.
const (
	// DefaultMaxIdleConnsPerHost keeps enough warm connections for 64
	// concurrent requests to one host. The standard library keeps 2: under
	// concurrency every connection beyond those two is closed after its
	// request (leaving a socket in TIME_WAIT) and dialed again for the next.
	DefaultMaxIdleConnsPerHost = 64
	// DefaultMaxIdleConns bounds idle connections over all hosts, so a client
	// that talks to many replicas (the hash ring) does not hoard sockets.
	DefaultMaxIdleConns = 512
	// DefaultIdleConnTimeout retires idle connections before the peer's
	// idle timeout does (60 s on common load balancers, 75 s in nginx; the
	// standard library's 90 s is longer than both), so the client rarely
	// sends a request on a connection the peer is closing.
	DefaultIdleConnTimeout = 55 * time.Second
	// DefaultDialTimeout bounds connect(); the request's context bounds it
	// further. Without it a blackholed host holds a goroutine for the kernel's
	// SYN retry time (over two minutes on Linux).
	DefaultDialTimeout = 3 * time.Second
	// DefaultKeepAlive is the TCP keep-alive probe interval, so a peer that
	// vanished without a FIN is detected on idle pooled connections.
	DefaultKeepAlive = 30 * time.Second
	// DefaultTLSHandshakeTimeout bounds the TLS handshake separately from the
	// dial, since a slow handshake is a distinct failure (overloaded peer).
	DefaultTLSHandshakeTimeout = 5 * time.Second
	// DefaultResponseHeaderTimeout bounds the wait for response headers after
	// the request is written: a peer that accepted the request and hangs is
	// cut off even when the caller's context has no deadline.
	DefaultResponseHeaderTimeout = 10 * time.Second
	// DefaultExpectContinueTimeout is how long a request with
	// "Expect: 100-continue" waits before sending its body anyway.
	DefaultExpectContinueTimeout = 1 * time.Second
)

// Config describes a client. The zero value is a sound client: every zero
// field takes the default above. Negative durations disable the limit.
type Config struct {
	// Name labels the client's metrics (client="callback"), so several
	// clients can share one Prometheus registry. Empty means "default".
	Name string

	// MaxIdleConnsPerHost, MaxIdleConns: see the defaults. MaxConnsPerHost
	// caps all connections (idle and active) per host; 0 means no cap, which
	// is right unless the peer limits connections.
	MaxIdleConnsPerHost int
	MaxIdleConns        int
	MaxConnsPerHost     int

	IdleConnTimeout       time.Duration
	DialTimeout           time.Duration
	KeepAlive             time.Duration
	TLSHandshakeTimeout   time.Duration
	ResponseHeaderTimeout time.Duration
	ExpectContinueTimeout time.Duration

	// Timeout is http.Client.Timeout: an end-to-end limit including reading
	// the body. Zero means none, which is the project's choice: every call
	// carries a context with a deadline budget instead.
	Timeout time.Duration

	// DisableHTTP2 turns off HTTP/2 over TLS. By default the transport
	// attempts HTTP/2 (ForceAttemptHTTP2), which the standard library would
	// otherwise silently drop because we set a custom DialContext.
	DisableHTTP2 bool

	// TLSClientConfig is used for https URLs; nil means the system roots.
	TLSClientConfig *tls.Config

	// Wrap adds RoundTrippers, outermost first (see the package doc). Each
	// function receives the next RoundTripper toward the network.
	Wrap []func(http.RoundTripper) http.RoundTripper

	// TrackBodies records the method and URL of every open body so that
	// CheckBodies can say which requests leaked. It costs a map operation per
	// request; turn it on in tests.
	TrackBodies bool
}

// Client is an *http.Client (embedded, so Do, Get and Post work as usual)
// with its accounting. Pass c.Client where an *http.Client is wanted.
type Client struct {
	*http.Client
	// Base is the innermost transport, the connection pool itself, exposed
	// for inspection; do not change its fields after New. (It is not named
	// Transport, which would shadow the embedded http.Client's field.)
	Base *http.Transport

	name string
	acct *accounting
}

// New returns a client built from cfg, with zero fields defaulted.
func New(cfg Config) *Client {
	cfg = cfg.withDefaults()
	acct := newAccounting(cfg.TrackBodies)
	dialer := &net.Dialer{
		Timeout:   positive(cfg.DialTimeout),
		KeepAlive: cfg.KeepAlive,
	}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				acct.dialErrors.Add(1)
				return nil, err
			}
			acct.dials.Add(1)
			return conn, nil
		},
		ForceAttemptHTTP2:     !cfg.DisableHTTP2,
		MaxIdleConns:          cfg.MaxIdleConns,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		MaxConnsPerHost:       cfg.MaxConnsPerHost,
		IdleConnTimeout:       positive(cfg.IdleConnTimeout),
		TLSHandshakeTimeout:   positive(cfg.TLSHandshakeTimeout),
		ResponseHeaderTimeout: positive(cfg.ResponseHeaderTimeout),
		ExpectContinueTimeout: positive(cfg.ExpectContinueTimeout),
	}
	if cfg.TLSClientConfig != nil {
		// The transport appends "h2" to NextProtos of the config it is
		// given; a clone keeps the caller's config (often shared) unchanged.
		tr.TLSClientConfig = cfg.TLSClientConfig.Clone()
	}
	if cfg.DisableHTTP2 {
		// Protocols, not an empty TLSNextProto map: with a TLS config that
		// already offers "h2" in ALPN (as one shared with an HTTP/2 client
		// does), the map alone lets the server pick HTTP/2 on a connection
		// we then speak HTTP/1 on; TestHTTP2OverTLS caught exactly that.
		var p http.Protocols
		p.SetHTTP1(true)
		tr.Protocols = &p
	}
	var rt http.RoundTripper = tr
	for i := len(cfg.Wrap) - 1; i >= 0; i-- {
		rt = cfg.Wrap[i](rt)
	}
	return &Client{
		Client: &http.Client{Transport: &accountingTransport{next: rt, acct: acct}, Timeout: positive(cfg.Timeout)},
		Base:   tr,
		name:   cfg.Name,
		acct:   acct,
	}
}

func (cfg Config) withDefaults() Config {
	if cfg.Name == "" {
		cfg.Name = "default"
	}
	setInt(&cfg.MaxIdleConnsPerHost, DefaultMaxIdleConnsPerHost)
	setInt(&cfg.MaxIdleConns, DefaultMaxIdleConns)
	setDur(&cfg.IdleConnTimeout, DefaultIdleConnTimeout)
	setDur(&cfg.DialTimeout, DefaultDialTimeout)
	setDur(&cfg.KeepAlive, DefaultKeepAlive)
	setDur(&cfg.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	setDur(&cfg.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	setDur(&cfg.ExpectContinueTimeout, DefaultExpectContinueTimeout)
	return cfg
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}

func setDur(p *time.Duration, def time.Duration) {
	if *p == 0 {
		*p = def
	}
}

// positive maps a negative "disabled" duration to the transport's zero,
// which means no limit there.
func positive(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d
}

// Name is the value of the client label on the client's metrics.
func (c *Client) Name() string { return c.name }

// Stats is a snapshot of a client's accounting.
type Stats struct {
	Requests      uint64 // round trips started
	Errors        uint64 // round trips that returned an error
	Dials         uint64 // TCP connections dialed successfully
	DialErrors    uint64 // dials that failed
	ConnsNew      uint64 // requests sent on a fresh connection (GotConn, Reused=false)
	ConnsReused   uint64 // requests sent on a pooled connection (GotConn, Reused=true)
	BodiesOpened  uint64 // response bodies handed to the caller
	BodiesClosed  uint64 // of those, closed (each counted once)
	OpenBodies    int64  // BodiesOpened - BodiesClosed: must return to zero
	OpenBodyNames []string
}

// Stats returns the current counters. OpenBodyNames lists "METHOD URL" of
// the open bodies when Config.TrackBodies is set.
func (c *Client) Stats() Stats {
	s := c.counters()
	s.OpenBodyNames = c.acct.openNames()
	return s
}

// counters is Stats without the names, for the collector: a scrape should
// not copy a map.
func (c *Client) counters() Stats {
	a := c.acct
	// Read closed before opened so a concurrent request never makes the
	// snapshot show a negative number of open bodies.
	closed := a.bodiesClosed.Load()
	opened := a.bodiesOpened.Load()
	return Stats{
		Requests:     a.requests.Load(),
		Errors:       a.errors.Load(),
		Dials:        a.dials.Load(),
		DialErrors:   a.dialErrors.Load(),
		ConnsNew:     a.connsNew.Load(),
		ConnsReused:  a.connsReused.Load(),
		BodiesOpened: opened,
		BodiesClosed: closed,
		OpenBodies:   int64(opened) - int64(closed),
	}
}

// OpenBodies is the number of response bodies handed out and not yet closed.
func (c *Client) OpenBodies() int64 {
	closed := c.acct.bodiesClosed.Load()
	return int64(c.acct.bodiesOpened.Load()) - int64(closed)
}

// accounting holds the counters shared by the dialer, the trace hooks and
// the body wrappers of one client.
type accounting struct {
	requests, errors           atomic.Uint64
	dials, dialErrors          atomic.Uint64
	connsNew, connsReused      atomic.Uint64
	bodiesOpened, bodiesClosed atomic.Uint64
	tracker                    *bodyTracker // nil unless TrackBodies
}

func newAccounting(track bool) *accounting {
	a := &accounting{}
	if track {
		a.tracker = newBodyTracker()
	}
	return a
}

func (a *accounting) openNames() []string {
	if a.tracker == nil {
		return nil
	}
	return a.tracker.names()
}

// CloseIdleConnections closes the idle pooled connections of the underlying
// transport directly, even when a Wrap layer does not forward the call.
func (c *Client) CloseIdleConnections() { c.Base.CloseIdleConnections() }
