package sqlbus

import "sync/atomic"

// Stats counts a Bus's work since New, over all groups: for metrics, and to
// see what a delivery costs in queries and writes independently of how busy
// the machine is.
type Stats struct {
	// Polls is the number of outbox queries run (each reads up to a batch).
	Polls uint64
	// Read is the number of events those polls returned.
	Read uint64
	// Deliveries is the number of handler calls, redeliveries included.
	Deliveries uint64
	// Failures is the number of deliveries whose handler returned an error.
	Failures uint64
	// DeadLettered is the number of events moved to the dead letters.
	DeadLettered uint64
	// AckWrites is the number of batched ack writes that succeeded.
	AckWrites uint64
	// Claims is the number of deliveries of events present at start that
	// were counted durably before they began (the crash-loop guard).
	Claims uint64
}

// counters are the atomics behind Stats.
type counters struct {
	polls, read, deliveries, failures, deadLettered, ackWrites, claims atomic.Uint64
}

// Stats returns the bus's counters.
func (b *Bus) Stats() Stats {
	c := &b.stats
	return Stats{
		Polls: c.polls.Load(), Read: c.read.Load(), Deliveries: c.deliveries.Load(),
		Failures: c.failures.Load(), DeadLettered: c.deadLettered.Load(),
		AckWrites: c.ackWrites.Load(), Claims: c.claims.Load(),
	}
}
