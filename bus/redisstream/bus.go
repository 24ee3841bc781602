package redisstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/orderflow/orderflow"
	"github.com/redis/go-redis/v9"
)

var (
	_ orderflow.Consumer    = (*Bus)(nil)
	_ orderflow.DeadLetters = (*Bus)(nil)
	_ orderflow.Pinger      = (*Bus)(nil)
)

// Defaults for the zero fields of Config.
const (
	// DefaultPrefix names the streams: orders:{0} … orders:{P-1}.
	DefaultPrefix = "orders"
	// DefaultPartitions is the number of streams. More partitions spread a
	// Redis Cluster's load over more slots; one order always maps to one.
	DefaultPartitions = 16
	// DefaultConcurrency is the number of handlers one Consume runs at once:
	// the risk engine spends most of a delivery waiting on a callback.
	DefaultConcurrency = 64
	// DefaultBatchSize is the COUNT of one XREADGROUP, per stream.
	DefaultBatchSize = 256
	// DefaultEntryEvents is the most events Publish packs into one stream
	// entry.
	DefaultEntryEvents = 16
	// DefaultBlock is how long one XREADGROUP waits for new entries.
	DefaultBlock = time.Second
	// DefaultMaxDeliveries is how many deliveries dead-letter an event.
	DefaultMaxDeliveries = 10
	// DefaultBackoffBase is the wait before the second delivery; it doubles
	// with every failure up to DefaultBackoffMax.
	DefaultBackoffBase = 100 * time.Millisecond
	// DefaultBackoffMax caps the back-off between deliveries.
	DefaultBackoffMax = 5 * time.Second
	// DefaultClaimIdle is how long an entry must sit unacknowledged in
	// another consumer's pending list before XAUTOCLAIM takes it: that
	// consumer is presumed dead. Live consumers refresh their entries every
	// ClaimIdle/4, so only a dead (or stalled) one loses them.
	DefaultClaimIdle = 30 * time.Second
	// DefaultDedupTTL is how long an event id stays marked done per group:
	// a republish by the relay within it is acknowledged without handling.
	DefaultDedupTTL = 24 * time.Hour
	// DefaultShutdownGrace is how long running handlers may finish after
	// Consume's context ends before their own context is cancelled.
	DefaultShutdownGrace = 5 * time.Second
)

// Config tunes a Bus. The zero value works: each zero field takes its
// Default. Every process of one deployment must use the same Prefix and
// Partitions, or one order's events would land in different streams.
type Config struct {
	// Prefix is the stream name prefix; the partition number in braces is a
	// Redis Cluster hash tag, so a partition's stream, dead letters and
	// done markers share one slot and one Lua script may touch them all.
	Prefix string
	// Partitions is the number of streams events are spread over by order id.
	Partitions int
	// Consumer names this process's consumers in the groups: Consume calls
	// are named Consumer-0, Consumer-1, … (the lowest free index per
	// group). A name that stays the same across restarts lets a restarted
	// process take back its own pending entries at once, instead of after
	// ClaimIdle. Default hostname-pid, which is unique but not stable.
	// Two live processes must never share a name.
	Consumer string
	// Concurrency is the number of handlers each Consume call runs at once.
	Concurrency int
	// BatchSize is the most entries of one stream one XREADGROUP takes,
	// and the most entries one XAUTOCLAIM takes.
	BatchSize int
	// MaxInFlight bounds the events a Consume holds (read and not yet
	// acknowledged); it reads no more until some are, and a read asks
	// each stream for no more entries than would fill the room left if
	// all of them held EntryEvents events (at least one entry). Default 4
	// × BatchSize.
	MaxInFlight int
	// EntryEvents is the most events of one Publish call, all of one
	// partition, that share a stream entry. Redis's cost is mostly per
	// entry (append, delivery, pending list, ack), so a batch from the
	// outbox relay costs it a fraction of one entry per event. A batch is
	// acknowledged once all its events were handled (or dead-lettered);
	// redelivered, its events already handled are skipped by their done
	// markers. 1 gives every event its own entry.
	EntryEvents int
	// Block is how long an XREADGROUP waits for entries.
	Block time.Duration
	// MaxDeliveries is the number of deliveries after which an event is
	// dead-lettered. The count lives in the pending list; Redis restarted
	// empty forgets it, and that is accepted.
	MaxDeliveries int
	// BackoffBase and BackoffMax bound the wait before a redelivery:
	// BackoffBase doubled per failure, capped at BackoffMax, jittered down
	// by up to half.
	BackoffBase, BackoffMax time.Duration
	// ClaimIdle is the idle time after which a pending entry of another
	// consumer is reclaimed. KeepAlive (default ClaimIdle/4) is how often a
	// consumer resets the idle time of the entries it holds, so a handler
	// that runs long does not lose its entry; ClaimInterval (default
	// ClaimIdle/2, at most 5 s) is how often it looks for entries to claim.
	ClaimIdle, KeepAlive, ClaimInterval time.Duration
	// DedupTTL is how long an acknowledged event id is remembered per group
	// at least; at most 1.25 times that (see doneBuckets).
	DedupTTL time.Duration
	// ShutdownGrace is how long running handlers may finish once Consume's
	// context ended, before their context is cancelled.
	ShutdownGrace time.Duration
	// Logger receives the bus's warnings (a failed read or ack, which are
	// retried). Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Consumer == "" {
		host, _ := os.Hostname()
		c.Consumer = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	def(&c.Partitions, DefaultPartitions)
	def(&c.Concurrency, DefaultConcurrency)
	def(&c.BatchSize, DefaultBatchSize)
	def(&c.MaxInFlight, 4*c.BatchSize)
	def(&c.EntryEvents, DefaultEntryEvents)
	def(&c.MaxDeliveries, DefaultMaxDeliveries)
	defDur(&c.Block, DefaultBlock)
	defDur(&c.BackoffBase, DefaultBackoffBase)
	defDur(&c.BackoffMax, DefaultBackoffMax)
	defDur(&c.ClaimIdle, DefaultClaimIdle)
	defDur(&c.KeepAlive, c.ClaimIdle/4)
	defDur(&c.ClaimInterval, min(c.ClaimIdle/2, 5*time.Second))
	defDur(&c.DedupTTL, DefaultDedupTTL)
	defDur(&c.ShutdownGrace, DefaultShutdownGrace)
	if c.BackoffMax < c.BackoffBase {
		c.BackoffMax = c.BackoffBase
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Bus publishes events to partitioned Redis streams and consumes them in
// consumer groups. It is safe for concurrent use and starts no goroutine of
// its own: Consume and RunTrimmer own theirs.
type Bus struct {
	rdb     redis.UniversalClient
	cfg     Config
	cluster bool
	streams []string // streams[p] is partition p's stream key
	xadd    [][]any  // xadd[p] is "XADD <stream p> *": boxed once, not per event

	mu    sync.Mutex
	names map[string]map[int]bool // group → consumer indexes in use
}

// New returns a bus over rdb (a *redis.Client, or a *redis.ClusterClient:
// every script touches one partition's keys only, all in one slot). The
// caller owns rdb and closes it after every Consume returned.
func New(rdb redis.UniversalClient, cfg Config) *Bus {
	cfg = cfg.withDefaults()
	b := &Bus{rdb: rdb, cfg: cfg, names: map[string]map[int]bool{}}
	_, b.cluster = rdb.(*redis.ClusterClient)
	for p := range cfg.Partitions {
		s := cfg.Prefix + ":{" + strconv.Itoa(p) + "}"
		b.streams = append(b.streams, s)
		b.xadd = append(b.xadd, []any{"xadd", s, "*"})
	}
	return b
}

// Partition returns the partition of an order: a stable hash, so every
// process sends one order's events to the same stream, in order.
func (b *Bus) Partition(orderID string) int {
	return int(xxhash.Sum64String(orderID) % uint64(b.cfg.Partitions))
}

// Stream returns the key of partition p's stream.
func (b *Bus) Stream(p int) string { return b.streams[p] }

// deadKey is partition p's dead-letter stream.
func (b *Bus) deadKey(p int) string { return b.streams[p] + ":dead" }

// deadOfKey is the set of the events of batch entry id of partition p that
// group dead-lettered; it shares the partition's hash tag.
func (b *Bus) deadOfKey(p int, group, id string) string {
	return b.streams[p] + ":deadof:" + group + ":" + id
}

// doneBuckets is how many time buckets a DedupTTL is cut into: a marker
// lives in the bucket of its ack's time, and a bucket expires DedupTTL
// after its window ends, so a marker is kept between DedupTTL and
// DedupTTL × (1 + 1/doneBuckets), and the sets hold at most that much of
// a group's ids (about 45 bytes plus the id each). A check reads only the
// buckets that can hold the event's marker: those whose window ends after
// the event was created (less clockSkew), so a fresh event is checked
// against the current set alone. Sets of ids (one SADD per batch) cost
// Redis a fraction of one key with its own TTL per event.
const doneBuckets = 4

// clockSkew is how far the clock of the process that created an event may
// run ahead of a consumer's before the dedup check can miss the event's
// marker (it then handles a republication again: a duplicate, never a
// loss).
const clockSkew = 10 * time.Minute

// bucketWidth is the time window of one done-marker bucket.
func (b *Bus) bucketWidth() time.Duration {
	return max(b.cfg.DedupTTL/doneBuckets, time.Second)
}

// doneKey is the set of event ids group handled in bucket i of partition
// p; it shares the partition's hash tag.
func (b *Bus) doneKey(p int, group string, i int64) string {
	return b.streams[p] + ":done:" + group + ":" + strconv.FormatInt(i, 10)
}

// doneKeys caches one group's done-marker bucket keys, which change once
// per bucket width: every read and every flush would otherwise build them
// anew. It is safe for concurrent use.
type doneKeys struct {
	b     *Bus
	group string

	mu   sync.Mutex
	at   int64      // the bucket index keys were made for
	keys [][]string // keys[p]: partition p's buckets, newest first; never changed once made
}

// get returns, per partition, the buckets a marker made now or within
// DedupTTL may be in, newest first: [0] is where a marker made now goes;
// and the index of that bucket.
func (d *doneKeys) get(now time.Time) ([][]string, int64) {
	cur := now.UnixNano() / int64(d.b.bucketWidth())
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.keys == nil || d.at != cur {
		keys := make([][]string, len(d.b.streams))
		for p := range keys {
			keys[p] = make([]string, doneBuckets+1)
			for i := range keys[p] {
				keys[p][i] = d.b.doneKey(p, d.group, cur-int64(i))
			}
		}
		d.keys, d.at = keys, cur
	}
	return d.keys, cur
}

// Ping checks that Redis answers (readiness).
func (b *Bus) Ping(ctx context.Context) error {
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return redisErr(ctx, err, "ping")
	}
	return nil
}

// redisErr codes a failed Redis call: the caller's deadline is
// deadline_exceeded, anything else unavailable (Redis is a dependency that
// may come back).
func redisErr(ctx context.Context, err error, what string) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return orderflow.Wrap(orderflow.EDeadlineExceeded, err, "redisstream: %s", what)
	}
	return orderflow.Wrap(orderflow.EUnavailable, err, "redisstream: %s", what)
}

// acquireName returns the lowest free consumer name of group in this Bus.
func (b *Bus) acquireName(group string) (string, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	used := b.names[group]
	if used == nil {
		used = map[int]bool{}
		b.names[group] = used
	}
	i := 0
	for used[i] {
		i++
	}
	used[i] = true
	return b.cfg.Consumer + "-" + strconv.Itoa(i), func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(used, i)
	}
}
