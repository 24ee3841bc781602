package breaker

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Outcome is what one call tells the breaker about the dependency.
type Outcome uint8

const (
	// Success counts toward volume and shows the dependency healthy.
	Success Outcome = iota
	// Failure counts toward volume, the error rate and the run of
	// consecutive failures.
	Failure
	// Ignored is not counted at all: the call says nothing about the
	// dependency (the caller gave up, the request was invalid before it left).
	Ignored
)

// String returns "success", "failure" or "ignored".
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Ignored:
		return "ignored"
	}
	return "outcome(" + itoa(int(o)) + ")"
}

// Classifier turns the result of a call into an Outcome. It sees the latency
// too, so a policy such as "slower than the SLO is a failure" fits in it.
type Classifier func(err error, latency time.Duration) Outcome

// DefaultClassify is the classifier used when Config.Classify is nil: nil is a
// Success; context.Canceled is Ignored, because a caller that hung up tells us
// nothing about the dependency; every other error — deadline exceeded
// included, since a slow dependency is what a breaker exists for — is a
// Failure.
func DefaultClassify(err error, _ time.Duration) Outcome {
	switch {
	case err == nil:
		return Success
	case errors.Is(err, context.Canceled):
		return Ignored
	default:
		return Failure
	}
}

// HTTPStatus classifies an HTTP response status the way a client of a
// dependency usually should: 5xx and 429 Too Many Requests are failures (the
// server is broken or asks us to back off); everything else, 4xx included, is
// a success, because a 4xx says the request was wrong, not that the server is
// unhealthy, and must not open the breaker for everybody.
func HTTPStatus(code int) Outcome {
	if code >= 500 || code == http.StatusTooManyRequests {
		return Failure
	}
	return Success
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var buf [20]byte
	n := len(buf)
	neg := i < 0
	if neg {
		i = -i
	}
	for i > 0 {
		n--
		buf[n] = byte('0' + i%10)
		i /= 10
	}
	if neg {
		n--
		buf[n] = '-'
	}
	return string(buf[n:])
}
