// Package sqlbus is the embedded-mode bus: the order store's outbox table IS
// the log, and each consumer group reads it through a durable cursor. It
// implements orderflow.Consumer and orderflow.DeadLetters on a
// *sqlite.Store, writing its state through the store's group commit
// (Store.Write) and reading through its read pool (Store.ReadDB).
//
// # Delivery
//
// Delivery is at least once. Per group the bus keeps a cursor (the outbox seq
// up to which everything is acknowledged) and, for events above it, which
// ones were acknowledged out of order and how many deliveries failed
// (tables bus_cursors and bus_deliveries, which the bus creates in the
// store's file on first use).
// An event is acknowledged only after its handler returned nil. Acks are
// batched: they are written together every Config.FlushInterval, in one
// Write, and the cursor advances over the contiguous acknowledged prefix. An
// ack not yet written when the process dies is delivered again on the next
// start: at start a group delivers everything above its cursor that is not
// marked acknowledged, so an unacknowledged event comes back within one poll
// of a restart.
//
// Events of one order are handled one at a time, in outbox order: each order
// id has a queue, and a queue is served by one worker at a time, while up to
// Config.Concurrency orders are handled concurrently. A failed delivery holds
// back the later events of its order (not of other orders) until it succeeds
// or is dead-lettered.
//
// # Failures
//
// A handler error leaves the event unacknowledged; it is delivered again
// after an exponential back-off with jitter (Config.BackoffBase doubling up
// to Config.BackoffMax) with Delivery.Attempt one higher. The failed-delivery
// count is persisted (batched with the acks), so it survives a restart. A
// delivery cut short by the process dying reports nothing, so after a start
// the first delivery of every event that was already in the outbox is
// counted durably before it begins (one small write, shared with concurrent
// ones; events committed after the start pay nothing): a poison event that
// crashes the process ends in the dead letters after Config.MaxDeliveries
// restarts instead of crashing every one. After Config.MaxDeliveries
// deliveries, or at once for an error marked with orderflow.Permanent, the
// event is copied to the dead letters (bus_dead_letters, with the last error
// and the attempts) and acknowledged, in one write. A handler that panics
// fails that delivery; the panic does not escape.
//
// The crash-loop guard cannot tell the event that crashed the process from
// the others in flight at that moment: each of those is counted too. An
// event that sits next to a poison event through MaxDeliveries crashes is
// dead-lettered with it (the reason names a crash loop) and can be redriven.
//
// Redrive moves a dead letter to bus_redrive, from where only its own group
// receives it again, with Attempt starting at 1. A redriven event is not
// ordered against later events of its order: those went ahead when it was
// dead-lettered.
//
// # Consumers and shutdown
//
// The consumers of one group in one process share its events: the group has
// one poller and one ack writer, and every Consume call of that group adds
// Config.Concurrency workers taking orders from the same queue, so an event
// goes to exactly one of them (barring the redeliveries of at-least-once).
// A Bus is for one process: two processes, or two Bus values, reading one
// group from one file would each deliver every event. Embedded mode is one
// process; the distributed mode uses Redis Streams instead.
//
// Consume returns only after every goroutine it started has stopped. When its
// context ends it stops taking events, lets the handlers already running
// finish (their context is cancelled only after Config.ShutdownGrace), writes
// the acks, and returns; a handler that ignores its context holds Consume
// until it returns. The poller and ack writer belong to the group and are
// stopped by the last of its Consume calls to return. A Delivery's Payload
// and Headers are the bus's: a handler reads them and does not modify them.
//
// # Latency and retention
//
// An idle group polls every Config.PollInterval; Notify wakes every poller at
// once, so a service that calls it after committing an order gets its event
// delivered without waiting for the next poll. Prune deletes outbox rows that
// every known group has acknowledged and that are older than a retention;
// RunPruner calls it periodically.
package sqlbus
