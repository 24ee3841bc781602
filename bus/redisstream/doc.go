// Package redisstream is the distributed-mode bus: outbox events published
// to partitioned Redis streams and consumed by consumer groups. A *Bus
// implements orderflow.Consumer and orderflow.DeadLetters, and publishes
// with Publish, which the outbox relay calls. It works on one Redis or on a
// Redis Cluster (pass a *redis.ClusterClient).
//
// # Layout
//
// An event goes to partition xxhash64(order id) mod Config.Partitions, stream
// "<prefix>:{p}"; one order's events therefore stay in one stream, in
// publish order. Per partition there are also "<prefix>:{p}:dead" (the dead
// letters), "<prefix>:{p}:done:<group>:<bucket>" (sets of the event ids
// the group handled, one per time bucket of Config.DedupTTL/4, each expiring
// DedupTTL after its window) and, for a batch entry one of whose events
// the group dead-lettered, "<prefix>:{p}:deadof:<group>:<entry id>" (those
// events' ids, expiring after DedupTTL: a redelivered batch does not copy
// them again). The braces are a cluster hash tag: a
// partition's keys share a slot, so every Lua script call here, which
// touches one partition's keys (or, off a cluster, several partitions'),
// runs on a cluster too. An entry of one event has one field, "e", the
// event packed (id, type, order id, creation time, outbox seq, headers,
// payload; a W3C trace context crosses as a header), and "only" when it
// was redriven for one group. Publish packs the events of one call that
// share a partition into entries of up to Config.EntryEvents, field "b"
// (each event packed as in "e", in publish order): Redis's cost is mostly
// per entry, so a batch from the outbox relay costs a fraction of an entry
// per event.
//
// # Delivery
//
// Delivery is at least once, acknowledged only after the handler returned
// nil. Each Consume call is one consumer of the group, named
// Config.Consumer-N, reading every partition with one XREADGROUP (BLOCK
// Config.Block); it reads no more while it holds Config.MaxInFlight
// events, and each read asks every stream for the entries that fit the
// room left if they were full (at least 1, at most Config.BatchSize), so
// a backlog is shared among the group's consumers instead of taken by the
// first one to read. Events of one order are handled one
// at a time, in stream order, by Config.Concurrency workers; a failed
// delivery holds back the later events of its order (not of other orders)
// until it succeeds or is dead-lettered. A batch entry is acknowledged
// once each of its events was handled, skipped or dead-lettered; until
// then it stays pending, and if it is delivered again its events already
// handled are skipped by their done markers. Two consumers of one group
// may each receive events of the same order; the order between them is
// not kept.
//
// Acknowledgement and the "processed" marker are written by ONE script
// (SADD of the event ids to the current done bucket, then XACK of the
// entries whose last event this settles) after the handler succeeded,
// batched without a timer: whatever gathered while the previous write
// ran, plus, while deliveries are still queued for the workers and the
// reader has room, the acks of those, goes in one script call (one per
// partition on a cluster, pipelined). Every event read is checked against
// the group's done markers before it is queued (one SMISMEMBER per
// partition read and bucket, in one pipeline; only the buckets that end
// after the event's creation time can hold its marker, so a fresh event
// costs one set per partition); a delivery whose event id is already
// marked done for the group (the relay or the reconciler published it
// again) is acknowledged without calling the handler. The marker keeps a
// republished event from being handled twice for at least
// Config.DedupTTL, at most 1.25 times that; within one consumer, a
// republication read before the first one's marker was written is caught
// by a memo of the ids handled there.
//
// # Failures
//
// A handler error leaves the entry pending; the consumer delivers it again
// after a back-off (Config.BackoffBase doubling up to Config.BackoffMax),
// first recording the new delivery count in the pending list (XCLAIM …
// JUSTID RETRYCOUNT), so the count survives the consumer. Delivery.Attempt
// is that count; Redis restarted empty forgets it, which is accepted. After
// Config.MaxDeliveries deliveries, or at once for an orderflow.Permanent
// error, one script copies the entry to the dead letters and acknowledges
// it (an event of a batch entry is copied, once even if its entry is
// delivered again, and its entry acknowledged with its last event). A handler that panics fails that delivery.
// DeadLetters lists the dead letters; Redrive puts one back into its
// stream as a new entry that only its group handles, with Attempt
// starting at 1.
//
// # Dead consumers and long handlers
//
// Every Config.KeepAlive a consumer resets the idle time of all entries it
// holds with XCLAIM … JUSTID (no delivery counted), checking first that each
// is still its own, so a handler that runs long keeps its entry. Every
// Config.ClaimInterval it claims entries idle longer than Config.ClaimIdle
// from other consumers with XAUTOCLAIM: their owners died. Entries deleted
// from the stream while pending (reported by XAUTOCLAIM) are acknowledged
// away. Consumers with nothing pending and idle for 10 × ClaimIdle (gone
// processes whose names were not stable) are deleted from the group, in a
// script that checks and deletes at once. At start a consumer first takes
// back the entries still pending under its own name, so a restarted
// process with a stable Config.Consumer resumes at once instead of after
// ClaimIdle.
//
// # Shutdown and retention
//
// When Consume's context ends it stops reading, lets running handlers
// finish (their context is cancelled after Config.ShutdownGrace), writes
// their acks, and returns after every goroutine it started has stopped.
// Entries it held but did not handle stay pending under its name.
//
// Trim (or RunTrimmer) deletes what every group has acknowledged, by MINID
// computed from each group's oldest pending entry and last-delivered id,
// never by MAXLEN, so nothing pending or undelivered is dropped.
package redisstream
