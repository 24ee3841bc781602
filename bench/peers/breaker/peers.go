// Package breakerpeers runs the breaker package's outage scenarios
// (breaker/breakersim) and its closed-path benchmark against well-known Go
// circuit breakers: sony/gobreaker v2, the Kitex breaker
// (bytedance/gopkg/cloud/circuitbreaker) and go-zero's core/breaker. Each peer
// is configured as close to our policy as its API allows; what it cannot
// express (a latency rule, a backoff, a clock) is said next to its adapter.
package breakerpeers

import (
	"context"
	"errors"
	"time"

	kitex "github.com/bytedance/gopkg/cloud/circuitbreaker"
	"github.com/sony/gobreaker/v2"
	gozero "github.com/zeromicro/go-zero/core/breaker"
	"github.com/zeromicro/go-zero/core/logx"

	"github.com/orderflow/orderflow/breaker"
	"github.com/orderflow/orderflow/breaker/breakersim"
)

// Policy shared by every adapter, copied from breaker.Config's defaults.
const (
	window              = 10 * time.Second
	minVolume           = 100
	errorRate           = 0.5
	consecutiveFailures = 10
	probes              = 3
	openFor             = time.Second
)

// Peer is one breaker under comparison.
type Peer struct {
	Name string
	// Virtual says whether the peer can run on the simulator's clock; peers
	// that read time.Now themselves only run in real time.
	Virtual bool
	Factory breakersim.Factory
}

// Peers lists our breaker and its peers.
func Peers() []Peer {
	return []Peer{
		{"orderflow/breaker", true, breakersim.Breaker(breaker.Config{})},
		{"sony/gobreaker/v2", false, GoBreaker},
		{"kitex circuitbreaker", false, Kitex},
		{"go-zero core/breaker", false, GoZero},
	}
}

// GoBreaker is sony/gobreaker v2.4.0: a rolling 10×1s window, the same
// consecutive-failure and error-rate trip (it has no latency signal), three
// half-open requests, and a fixed 1s open period (it has no backoff).
// It reads time.Now itself, so clock is ignored.
func GoBreaker(breakersim.Clock) breakersim.Adapter {
	return goBreaker{gobreaker.NewTwoStepCircuitBreaker[struct{}](GoBreakerSettings())}
}

// GoBreakerSettings is the gobreaker policy used by the scenarios and the
// benchmark.
func GoBreakerSettings() gobreaker.Settings {
	return gobreaker.Settings{
		Name:         "peer",
		MaxRequests:  probes,
		Interval:     window,
		BucketPeriod: time.Second,
		Timeout:      openFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= consecutiveFailures ||
				c.Requests >= minVolume && float64(c.TotalFailures) >= errorRate*float64(c.Requests)
		},
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
	}
}

type goBreaker struct {
	cb *gobreaker.TwoStepCircuitBreaker[struct{}]
}

func (g goBreaker) Allow() (func(error, time.Duration), bool) {
	done, err := g.cb.Allow()
	if err != nil {
		return nil, false
	}
	return func(err error, _ time.Duration) { done(err) }, true
}

// Kitex is the Kitex breaker (bytedance/gopkg v0.1.4): a 10s window of 100ms
// buckets, ConsecutiveTripFuncV2 with the same error rate, minimum volume and
// consecutive-failure limit (no latency signal), 3 half-open successes, a
// fixed 1s cooling period (no backoff) and its default 200ms between
// half-open probes. It takes a Now function, but its window is rotated by a
// real-time ticker goroutine and its consecutive-error time reads time.Now,
// so it too runs in real time only.
func Kitex(breakersim.Clock) breakersim.Adapter {
	p, err := kitex.NewPanel(nil, KitexOptions())
	if err != nil {
		panic(err)
	}
	return kitexBreaker{p}
}

// KitexOptions is the Kitex policy used by the scenarios and the benchmark.
func KitexOptions() kitex.Options {
	return kitex.Options{
		BucketTime:        100 * time.Millisecond,
		BucketNums:        100,
		CoolingTimeout:    openFor,
		HalfOpenSuccesses: probes,
		ShouldTrip:        kitex.ConsecutiveTripFuncV2(errorRate, minVolume, 0, 0, consecutiveFailures),
	}
}

// KitexKey is the one key the adapters use in a Kitex panel.
const KitexKey = "peer"

type kitexBreaker struct{ p kitex.Panel }

func (k kitexBreaker) Allow() (func(error, time.Duration), bool) {
	if !k.p.IsAllowed(KitexKey) {
		return nil, false
	}
	return func(err error, _ time.Duration) {
		switch {
		case err == nil:
			k.p.Succeed(KitexKey)
		case errors.Is(err, context.Canceled): // not counted, as in ours
		default:
			k.p.Fail(KitexKey)
		}
	}, true
}

func (k kitexBreaker) Close() { k.p.Close() }

// GoZero is go-zero v1.10.3 core/breaker, Google SRE adaptive throttling: it
// has no states and no settings (k=1.5 over a 10s window of 40 buckets); it
// drops a growing fraction of calls as accepts fall behind requests. It reads
// time itself: real time only.
func GoZero(breakersim.Clock) breakersim.Adapter {
	logx.Disable() // it logs every dropped call
	return goZero{gozero.NewBreaker()}
}

type goZero struct{ b gozero.Breaker }

func (g goZero) Allow() (func(error, time.Duration), bool) {
	p, err := g.b.Allow()
	if err != nil {
		return nil, false
	}
	return func(err error, _ time.Duration) {
		switch {
		case err == nil:
			p.Accept()
		case errors.Is(err, context.Canceled): // neither: not counted, as in ours
		default:
			p.Reject(err.Error())
		}
	}, true
}
