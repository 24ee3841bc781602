package loadgen

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"
)

// Config is one run. The zero value of every field but URL and Rate gets
// the default named beside it.
type Config struct {
	// URL is the order service's base URL.
	URL string
	// LabelsURL is where POST /v1/risk/labels goes: the risk engine's
	// listener. Empty means URL, which is right for serve, where the risk
	// engine shares the public listener.
	LabelsURL string
	// Rate is the offered load in orders a second.
	Rate float64
	// Concurrency caps creates in flight (DefaultConcurrency); a slot that
	// finds them all busy is dropped and counted, never queued.
	Concurrency int
	// Duration and Orders end the sending phase, whichever comes first;
	// with neither, it runs until ctx ends. Orders counts offered slots.
	Duration time.Duration
	Orders   int64
	// Seed selects the synthetic stream (risk/synth).
	Seed uint64
	// Users is the stream's number of legitimate users (synth's default,
	// 10,000, when zero).
	Users int
	// UserPrefix starts every user id. Empty means "lg" and this run's id,
	// so runs against one service do not share users and their velocity.
	UserPrefix string
	// LabelDelay is how long after an order is seen decided its ground
	// truth is posted to /v1/risk/labels (DefaultLabelDelay); negative
	// sends no labels.
	LabelDelay time.Duration
	// APIToken, when set, is sent as a bearer token.
	APIToken string
	// AdversaryTries bounds the attempts of each adversarial user
	// (DefaultAdversaryTries).
	AdversaryTries int
	// Pollers is the number of goroutines polling decisions
	// (DefaultPollers); WatchMax bounds the orders watched at once
	// (DefaultWatchMax).
	Pollers  int
	WatchMax int
	// Watch is how decisions are observed: WatchGet (the default) polls
	// GET /v1/orders/{id} per order; WatchList pages through
	// GET /v1/orders (newest first) every ListEvery and sees many orders
	// per request, polling by id only the orders the pages did not reach.
	// The decide latency comes from the orders' own timestamps either way.
	Watch     string
	ListEvery time.Duration
	// Drain bounds the wait for the last decisions and labels after the
	// sending phase (DefaultDrain).
	Drain time.Duration
	// Timeout bounds each request (DefaultTimeout).
	Timeout time.Duration
	// Progress, when set, receives a progress line every ProgressEvery
	// (one second on a terminal, DefaultProgressEvery otherwise); on a
	// terminal (TTY) the line is rewritten in place.
	Progress      io.Writer
	ProgressEvery time.Duration
	TTY           bool
	// Transport carries the requests (a fresh http.Transport when nil).
	Transport http.RoundTripper
}

// Defaults of Config.
const (
	DefaultConcurrency    = 64
	DefaultLabelDelay     = time.Second
	DefaultAdversaryTries = 10
	DefaultPollers        = 4
	DefaultWatchMax       = 100_000
	DefaultDrain          = 10 * time.Second
	DefaultTimeout        = 5 * time.Second
	DefaultProgressEvery  = 5 * time.Second
	DefaultListEvery      = 100 * time.Millisecond
	maxLabelQueue         = 1 << 20
)

func (c *Config) setDefaults() error {
	switch {
	case c.URL == "":
		return errors.New("loadgen: a URL is required")
	case c.Rate <= 0 || math.IsInf(c.Rate, 0) || math.IsNaN(c.Rate):
		return fmt.Errorf("loadgen: rate must be > 0 orders/s, not %v", c.Rate)
	case c.Duration < 0 || c.Orders < 0:
		return errors.New("loadgen: duration and orders must not be negative")
	}
	switch c.Watch {
	case "":
		c.Watch = WatchGet
	case WatchGet, WatchList:
	default:
		return fmt.Errorf("loadgen: watch mode %q: want %q or %q", c.Watch, WatchGet, WatchList)
	}
	if c.ListEvery <= 0 {
		c.ListEvery = DefaultListEvery
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if c.LabelsURL == "" {
		c.LabelsURL = c.URL
	}
	c.LabelsURL = strings.TrimRight(c.LabelsURL, "/")
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.Concurrency, DefaultConcurrency)
	def(&c.AdversaryTries, DefaultAdversaryTries)
	def(&c.Pollers, DefaultPollers)
	def(&c.WatchMax, DefaultWatchMax)
	if c.LabelDelay == 0 {
		c.LabelDelay = DefaultLabelDelay
	}
	if c.Drain <= 0 {
		c.Drain = DefaultDrain
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = DefaultProgressEvery
		if c.TTY {
			c.ProgressEvery = time.Second
		}
	}
	return nil
}
