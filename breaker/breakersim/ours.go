package breakersim

import (
	"time"

	"github.com/orderflow/orderflow/breaker"
)

// Breaker adapts a *breaker.Breaker built from cfg and opts; the
// simulator's clock is appended to opts.
func Breaker(cfg breaker.Config, opts ...breaker.Option) Factory {
	return func(clock Clock) Adapter {
		o := append(append([]breaker.Option(nil), opts...), breaker.WithClock(clock))
		return ours{breaker.New(cfg, o...)}
	}
}

type ours struct{ b *breaker.Breaker }

func (a ours) Allow() (func(error, time.Duration), bool) {
	t, err := a.b.Allow()
	if err != nil {
		return nil, false
	}
	return t.Done, true
}
