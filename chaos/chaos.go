// Package chaos injects faults into a running service — latency, error
// responses, dropped connections and CPU burn — switchable at run time
// through an admin endpoint, so that retries, deadlines, the circuit breaker
// and the dashboards can be watched reacting to real failures.
//
// An Injector sits on the server side as HTTP middleware and on the client
// side as an http.RoundTripper. Its settings are swapped atomically: the
// request path reads them with one atomic load and no lock, so an Injector
// that is off (the default) costs about a nanosecond per request and can stay
// compiled into production binaries.
//
// The package imports nothing of the orderflow domain.
package chaos

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Set after Close.
var ErrClosed = errors.New("chaos: injector closed")

// ErrDropped is the error the client transport returns for an injected
// connection drop, standing in for a reset or an EOF from the network.
var ErrDropped = errors.New("chaos: injected connection drop")

// Config holds an Injector's collaborators; the zero value works.
type Config struct {
	// Logger receives one record per settings change, with the old and the
	// new settings. Nil means slog.Default(): chaos switched on in
	// production must never go unrecorded.
	Logger *slog.Logger
	// Rand returns numbers in [0, 1) and must be safe for concurrent use.
	// Nil means math/rand/v2; tests pass SeededRand for reproducible runs.
	Rand func() float64
	// WriteError writes an injected error response. Nil means
	// WriteJSONError; a service passes its own to answer in its API format.
	// The client transport uses it too, to synthesize responses.
	WriteError func(w http.ResponseWriter, r *http.Request, status int)
}

// Injector holds the current fault settings and applies them. Create it with
// New and Close it to stop a running CPU burn. Its methods are safe for
// concurrent use.
type Injector struct {
	log        *slog.Logger
	rand       func() float64
	writeError func(http.ResponseWriter, *http.Request, int)

	state atomic.Pointer[state]
	stats stats

	mu     sync.Mutex // serializes Set and Close, and owns burn
	burn   *burner
	closed bool
}

// state is the immutable, precomputed form of Settings that requests read.
type state struct {
	settings Settings
	latency  *Latency    // nil when it can never fire
	fault    *ErrorFault // nil when it can never fire
	server   bool        // some fault may apply on the server side
	client   bool        // some fault may apply on the client side
}

var offState = &state{}

// New returns an Injector with every fault off.
func New(cfg Config) *Injector {
	inj := &Injector{log: cfg.Logger, rand: cfg.Rand, writeError: cfg.WriteError}
	if inj.log == nil {
		inj.log = slog.Default()
	}
	if inj.rand == nil {
		inj.rand = rand.Float64
	}
	if inj.writeError == nil {
		inj.writeError = WriteJSONError
	}
	inj.state.Store(offState)
	return inj
}

// SeededRand returns a reproducible, concurrency-safe source for
// Config.Rand: the same seed gives the same sequence of fault decisions.
func SeededRand(seed uint64) func() float64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Float64()
	}
}

// Settings returns the current settings.
func (inj *Injector) Settings() Settings { return inj.state.Load().settings.clone() }

// Set validates s and replaces the current settings with it, atomically for
// the request path. A running CPU burn stops, and a new one starts if s asks
// for it. The change is logged with the old and new settings.
func (inj *Injector) Set(s Settings) error { return inj.set(s) }

func (inj *Injector) set(s Settings, logAttrs ...any) error {
	if err := s.Validate(); err != nil {
		return err
	}
	s = s.clone()
	inj.mu.Lock()
	defer inj.mu.Unlock()
	if inj.closed {
		return ErrClosed
	}
	old := inj.state.Load().settings
	inj.stopBurn()
	if s.CPU != nil && s.CPU.Share > 0 {
		s.CPU.Until = time.Now().Add(s.CPU.Duration)
		inj.burn = startBurner(s.CPU.Share, s.CPU.Duration, inj.log)
	} else {
		s.CPU = nil
	}
	inj.state.Store(compile(s))
	inj.log.Info("chaos settings changed", append(logAttrs, slog.Any("old", old), slog.Any("new", s))...)
	return nil
}

// compile precomputes what the request path needs, so it tests two booleans
// when nothing applies.
func compile(s Settings) *state {
	st := &state{settings: s}
	if l := s.Latency; l != nil && l.Probability > 0 && l.Fixed+l.Jitter > 0 {
		st.latency = l
		st.server = st.server || l.Scope.covers(Server)
		st.client = st.client || l.Scope.covers(Client)
	}
	if e := s.Error; e != nil && e.Probability > 0 {
		st.fault = e
		st.server = st.server || e.Scope.covers(Server)
		st.client = st.client || e.Scope.covers(Client)
	}
	return st
}

func (s Scope) covers(side Side) bool {
	return len(s.Sides) == 0 || slices.Contains(s.Sides, side)
}

// Burning reports whether a CPU burn is running now; it turns false when
// the burn's duration has passed, without a Set.
func (inj *Injector) Burning() bool {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	return inj.burn != nil && !inj.burn.finished()
}

// Close stops a running CPU burn and turns every fault off for good. It is
// safe to call more than once.
func (inj *Injector) Close() error {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	if inj.closed {
		return nil
	}
	inj.closed = true
	inj.stopBurn()
	inj.state.Store(offState)
	return nil
}

// stopBurn stops the burner and waits for its goroutine; inj.mu is held.
func (inj *Injector) stopBurn() {
	if inj.burn != nil {
		inj.burn.stop()
		inj.burn = nil
	}
}

func (inj *Injector) hit(p float64) bool {
	return p >= 1 || (p > 0 && inj.rand() < p)
}

// delay returns the latency to inject for a request, or 0.
func (inj *Injector) delay(st *state, side Side, path string) time.Duration {
	l := st.latency
	if l == nil || !l.matches(side, path) || !inj.hit(l.Probability) {
		return 0
	}
	d := l.Fixed
	if l.Jitter > 0 {
		d += time.Duration(inj.rand() * float64(l.Jitter))
	}
	return d
}

// failure returns the error fault to inject for a request, or nil.
func (inj *Injector) failure(st *state, side Side, path string) *ErrorFault {
	e := st.fault
	if e == nil || !e.matches(side, path) || !inj.hit(e.Probability) {
		return nil
	}
	return e
}

// sleep waits for d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
