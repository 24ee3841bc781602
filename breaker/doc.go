// Package breaker is a circuit breaker that decides from two signals at once:
// the error rate and the P95 latency of a rolling window, against a latency
// baseline it learns by itself while the dependency is healthy.
//
// Closed, it admits every call and records each outcome in the current bucket
// of a ring of buckets (10 × 1s by default). A bucket is a fixed log-linear
// latency histogram of atomic counters plus a failure counter, so the window
// is merged by adding counters and its P95 read from the merge — no sample is
// kept or sorted. A few times per bucket the window is evaluated: with at
// least MinVolume calls in it, the breaker opens when
//
//	failures/volume ≥ ErrorRate   or   P95 ≥ min(LatencyCeiling, max(LatencyFloor, LatencyMultiplier × baseline))
//
// The error-rate rule is also applied to short windows (the current bucket,
// alone and with the last full one) so that a partial outage is not diluted by a
// long healthy history. A run of ConsecutiveFailures failures opens it at once, without waiting for
// volume: a hard outage at 1,000 calls/s trips in about 10ms.
//
// Open, it rejects every call with ErrOpen for a backoff that starts at
// MinOpen, doubles at each consecutive opening up to MaxOpen, and is
// stretched by a random jitter. Then it is half-open: exactly Probes calls are
// admitted; all must succeed (fast enough to pass the latency rule) to close
// it, any failure re-opens it. Closing resets the window and the backoff.
//
// Outcomes are Success, Failure or Ignored; a Classifier maps (err, latency)
// to one (DefaultClassify ignores context.Canceled: a caller that gave up
// says nothing about the dependency), and HTTPStatus maps a status code.
//
// The closed-state hot path — Allow, then Ticket.Done — takes no lock and
// allocates nothing: an atomic load of the state, one atomic add on the
// histogram, and a clock read only for failures, slow calls and one fast
// success in eight. Transitions, bucket rotation and evaluation take a mutex.
//
// OnStateChange and Snapshot make every decision observable, DryRun makes it
// harmless, and an injectable Clock (WithClock) makes it testable: package
// breakersim replays outage scenarios in simulated time against this breaker
// and, in bench/peers, against other libraries.
package breaker
