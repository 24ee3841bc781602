package risk

import (
	"context"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemoryConfig configures MemoryCounters. The zero value works.
type MemoryConfig struct {
	// Retention is how long an idle user is remembered at all (first-seen
	// time and amount history). 0 means LongWindow (24 h): memory then holds
	// only users active in the last day. A longer retention keeps a small
	// summary (under 100 bytes) per user and makes first-seen age and amount
	// history reach further back; the events of the windows are dropped after
	// LongWindow of idleness either way. Values below LongWindow are raised
	// to it.
	Retention time.Duration
	// MaxEvents caps the orders kept per user for the windows; the oldest
	// go first, so counts saturate at MaxEvents. 0 means 512. It bounds the
	// memory and the time a single bot user can cost.
	MaxEvents int
	// Shards is the number of independently locked shards (rounded up to a
	// power of two). 0 means 64: far more than cores, so contention stays
	// rare.
	Shards int
}

// MemoryCounters is the in-process Counters: sliding windows of each user's
// recent orders and a running summary of the user's amounts, in sharded maps.
// Memory is bounded by the users active within the retention times
// (MaxEvents+1) small records, plus the idle users of a shard that has not
// swept yet (at most a quarter of its size). Eviction needs no goroutine:
// each shard sweeps itself as observations arrive, at most once a minute of
// order time and only after a quarter as many observations as it holds
// users, so sweeping costs O(1) per observation, amortized.
type MemoryCounters struct {
	retention int64 // ns
	maxEvents int
	mask      uint64
	seed      maphash.Seed
	shards    []memShard
}

var _ Counters = (*MemoryCounters)(nil)

// sweepEvery is how often (in order time) a shard looks for idle users.
const sweepEvery = int64(time.Minute)

type memShard struct {
	mu        sync.Mutex
	users     map[string]*memUser
	latest    int64 // latest observation time seen by the shard, ns
	lastSweep int64
	// sinceSweep counts observations since the last sweep: a sweep costs
	// O(users in the shard), and waiting for a quarter of that many
	// observations makes it O(1) per observation, amortized.
	sinceSweep int
	_          [64]byte // keep neighbouring shards' locks off one cache line
}

// memUser is one user's state. Events are kept sorted by time.
type memUser struct {
	events    []memEvent
	firstSeen int64
	lastSeen  int64
	// Welford's running mean and sum of squared deviations of ln(amount).
	n    int
	mean float64
	m2   float64
}

type memEvent struct {
	at     int64
	order  uint64 // hash of the order id
	device uint64 // hash of the device id; 0 when none
}

// NewMemoryCounters returns empty in-memory counters.
func NewMemoryCounters(cfg MemoryConfig) *MemoryCounters {
	if cfg.Retention < LongWindow {
		cfg.Retention = LongWindow
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = 512
	}
	n := 64
	if cfg.Shards > 0 {
		n = 1
		for n < cfg.Shards {
			n <<= 1
		}
	}
	c := &MemoryCounters{
		retention: int64(cfg.Retention),
		maxEvents: cfg.MaxEvents,
		mask:      uint64(n - 1),
		seed:      maphash.MakeSeed(),
		shards:    make([]memShard, n),
	}
	for i := range c.shards {
		c.shards[i].users = make(map[string]*memUser)
	}
	return c
}

// Observe records o and returns the user's snapshot (see Snapshot). It never
// blocks on I/O; it returns ctx's error only if ctx has already ended.
func (c *MemoryCounters) Observe(ctx context.Context, o Observation) (Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}
	at := o.At.UnixNano()
	ev := memEvent{at: at, order: c.hash(o.OrderID)}
	if o.DeviceID != "" {
		ev.device = c.hash(o.DeviceID) | 1 // never 0, which means "no device"
	}
	sh := &c.shards[c.hash(o.UserID)&c.mask]

	sh.mu.Lock()
	defer sh.mu.Unlock()
	if at > sh.latest {
		sh.latest = at
	}
	sh.sinceSweep++
	if sh.latest-sh.lastSweep >= sweepEvery && sh.sinceSweep >= len(sh.users)/4 {
		c.sweep(sh)
	}
	u := sh.users[o.UserID]
	if u != nil && u.lastSeen < at-c.retention {
		// Idle past the retention: forgotten, whether or not a sweep has
		// freed it yet, so what the counters return never depends on when
		// sweeps run (which depends on hashing and traffic).
		*u = memUser{events: u.events[:0], firstSeen: at}
	}
	if u == nil {
		u = &memUser{firstSeen: at}
		// Clone: the key must not pin the caller's (possibly large) buffer.
		sh.users[strings.Clone(o.UserID)] = u
	}
	var s Snapshot
	s.PriorOrders, s.MeanLogAmount, s.StdLogAmount = u.n, u.mean, u.std()
	if slices.ContainsFunc(u.events, func(e memEvent) bool { return e.order == ev.order }) {
		s.Duplicate = true
	} else {
		u.insert(ev, c.maxEvents)
		u.add(math.Log(float64(max(o.AmountMinor, 1))))
		u.firstSeen = min(u.firstSeen, at)
	}
	u.lastSeen = max(u.lastSeen, at)
	// Trim what left the long window of the newest order; an observation
	// older than that still counts itself below, as it should.
	u.trim(u.lastSeen - int64(LongWindow))
	s.Orders1h, s.Orders24h, s.Devices24h = u.count(at)
	if s.Duplicate {
		s.Orders1h, s.Orders24h = max(s.Orders1h, 1), max(s.Orders24h, 1)
	} else if ev.at <= u.lastSeen-int64(LongWindow) {
		// An observation older than the long window of the newest order was
		// trimmed at once; it still counts itself.
		s.Orders1h, s.Orders24h = s.Orders1h+1, s.Orders24h+1
		if ev.device != 0 {
			s.Devices24h++
		}
	}
	s.FirstSeen = time.Unix(0, u.firstSeen).UTC()
	return s, nil
}

// Users returns the number of users the counters remember.
func (c *MemoryCounters) Users() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.users)
		sh.mu.Unlock()
	}
	return n
}

// Sweep forgets users idle for longer than the retention and drops the
// window events of users idle for longer than LongWindow, as of now (order
// time). Observe sweeps each shard on its own once a minute of order time;
// Sweep is for a caller whose traffic stops, so memory is freed anyway.
func (c *MemoryCounters) Sweep(now time.Time) {
	at := now.UnixNano()
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.latest = max(sh.latest, at)
		c.sweep(sh)
		sh.mu.Unlock()
	}
}

// sweep runs with sh locked.
func (c *MemoryCounters) sweep(sh *memShard) {
	sh.lastSweep, sh.sinceSweep = sh.latest, 0
	forget, drop := sh.latest-c.retention, sh.latest-int64(LongWindow)
	for id, u := range sh.users {
		switch {
		case u.lastSeen < forget:
			delete(sh.users, id)
		case u.lastSeen < drop && u.events != nil:
			u.events = nil
		}
	}
}

func (c *MemoryCounters) hash(s string) uint64 { return maphash.String(c.seed, s) }

// insert adds e keeping events sorted by time; at most max are kept.
func (u *memUser) insert(e memEvent, max int) {
	i := len(u.events)
	for i > 0 && u.events[i-1].at > e.at {
		i--
	}
	u.events = slices.Insert(u.events, i, e)
	if len(u.events) > max {
		u.events = slices.Delete(u.events, 0, len(u.events)-max)
	}
}

// trim drops events at or before cutoff.
func (u *memUser) trim(cutoff int64) {
	i := 0
	for i < len(u.events) && u.events[i].at <= cutoff {
		i++
	}
	if i > 0 {
		u.events = slices.Delete(u.events, 0, i)
	}
}

// count returns the window counts as of at: events in (at−w, at].
func (u *memUser) count(at int64) (short, long, devices int) {
	var seen [32]uint64
	extra := map[uint64]struct{}(nil)
	nseen := 0
	for _, e := range u.events {
		if e.at > at || e.at <= at-int64(LongWindow) {
			continue
		}
		long++
		if e.at > at-int64(ShortWindow) {
			short++
		}
		if e.device == 0 || slices.Contains(seen[:nseen], e.device) {
			continue
		}
		if nseen < len(seen) {
			seen[nseen] = e.device
			nseen++
			continue
		}
		if extra == nil {
			extra = make(map[uint64]struct{})
		}
		extra[e.device] = struct{}{}
	}
	return short, long, nseen + len(extra)
}

func (u *memUser) add(x float64) {
	u.n++
	d := x - u.mean
	u.mean += d / float64(u.n)
	u.m2 += d * (x - u.mean)
}

func (u *memUser) std() float64 {
	if u.n < 2 {
		return 0
	}
	return math.Sqrt(u.m2 / float64(u.n))
}
