// Package rediscounters is the risk engine's velocity counters in Redis, for
// the distributed mode: every risk replica sees the same per-user windows, so
// a user's orders count together whichever replica scores them.
//
// One Lua script per observation does, atomically, for the user's keys: a
// duplicate check (ZSCORE of the order id), ZADD of the order id scored by its
// time, the device of the order in a hash, ZREMRANGEBYSCORE of what left the
// long window (and a cap on the orders kept), ZCOUNT over the 1 h and 24 h
// windows, the distinct devices among the orders in the 24 h window, the
// amount summary (count, sum and sum of squares of ln amount, first seen)
// read before and updated after, and PEXPIRE of every key to the retention.
// One round trip per order, and no interleaving between replicas.
//
// Redis may lose this state (restart without persistence, failover): the
// counters then start again from empty, which lowers velocity features for a
// day. That is accepted: the decisions themselves live in PostgreSQL.
package rediscounters

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orderflow/orderflow/risk"
)

// DefaultPrefix is put before every key when Config.Prefix is empty.
const DefaultPrefix = "orderflow:risk:"

// Config configures Counters. Client is required.
type Config struct {
	Client redis.UniversalClient
	// Prefix of every key; DefaultPrefix when empty. The user id goes in a
	// hash tag, so one user's keys share a Redis Cluster slot.
	Prefix string
	// Retention is the keys' TTL after a user's last order; 25 h when 0 (the
	// long window plus an hour of slack). Below 24 h it is raised to it.
	Retention time.Duration
	// MaxEvents caps the orders kept per user for the windows (oldest go
	// first), bounding what a single bot costs the script; 512 when 0.
	MaxEvents int
}

// Counters is a risk.Counters on Redis, safe for concurrent use.
type Counters struct {
	rdb       redis.UniversalClient
	prefix    string
	retention time.Duration
	maxEvents int
}

var _ risk.Counters = (*Counters)(nil)

// New returns Counters on cfg.Client; the caller keeps owning the client.
func New(cfg Config) (*Counters, error) {
	if cfg.Client == nil {
		return nil, errors.New("rediscounters: Client is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Retention == 0 {
		cfg.Retention = 25 * time.Hour
	}
	cfg.Retention = max(cfg.Retention, 24*time.Hour)
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = 512
	}
	return &Counters{rdb: cfg.Client, prefix: cfg.Prefix, retention: cfg.Retention, maxEvents: cfg.MaxEvents}, nil
}

// Ping checks that Redis answers (readiness).
func (c *Counters) Ping(ctx context.Context) error { return c.rdb.Ping(ctx).Err() }

// Times are microseconds in the scores: nanoseconds since 1970 do not fit a
// double's 53 bits exactly, microseconds do until the year 2255.
const (
	hourMicros = int64(time.Hour / time.Microsecond)
	dayMicros  = 24 * hourMicros
)

// observeScript: KEYS = orders zset, devices hash, summary hash.
// ARGV = order id, device, at (µs), ln amount, retention (ms), max events.
// Returns {dup, orders1h, orders24h, devices24h, n, sum, sumsq, first} with
// n, sum, sumsq as read BEFORE this order was added (the history it is
// compared against) and first after.
var observeScript = redis.NewScript(`
local zo, hd, hs = KEYS[1], KEYS[2], KEYS[3]
local id, dev, at, lnamt = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local ttl, cap = tonumber(ARGV[5]), tonumber(ARGV[6])
local day, hour = ` + strconv.FormatInt(dayMicros, 10) + `, ` + strconv.FormatInt(hourMicros, 10) + `

local dup = 0
if redis.call('ZSCORE', zo, id) then dup = 1 end
local sum = redis.call('HMGET', hs, 'n', 's1', 's2', 'first')
local n, s1, s2, first = sum[1] or '0', sum[2] or '0', sum[3] or '0', sum[4]
if dup == 0 then
  redis.call('ZADD', zo, at, id)
  if dev ~= '' then redis.call('HSET', hd, id, dev) end
  redis.call('HINCRBY', hs, 'n', 1)
  redis.call('HINCRBYFLOAT', hs, 's1', lnamt)
  redis.call('HINCRBYFLOAT', hs, 's2', tonumber(lnamt) * tonumber(lnamt))
  if not first or at < tonumber(first) then
    first = tostring(at)
    redis.call('HSET', hs, 'first', first)
  end
  -- forget what left the long window of the newest order, then cap
  local newest = tonumber(redis.call('ZRANGE', zo, -1, -1, 'WITHSCORES')[2])
  local old = redis.call('ZRANGEBYSCORE', zo, '-inf', newest - day)
  local card = redis.call('ZCARD', zo) - #old
  if card > cap then
    local more = redis.call('ZRANGE', zo, #old, #old + card - cap - 1)
    for _, m in ipairs(more) do old[#old + 1] = m end
  end
  if #old > 0 then
    redis.call('ZREM', zo, unpack(old))
    redis.call('HDEL', hd, unpack(old))
  end
end
local c1 = redis.call('ZCOUNT', zo, '(' .. (at - hour), at)
local ids = redis.call('ZRANGEBYSCORE', zo, '(' .. (at - day), at)
local devs = 0
if #ids > 0 then
  local seen = {}
  for _, d in ipairs(redis.call('HMGET', hd, unpack(ids))) do
    if d and not seen[d] then seen[d] = true; devs = devs + 1 end
  end
end
redis.call('PEXPIRE', zo, ttl)
redis.call('PEXPIRE', hd, ttl)
redis.call('PEXPIRE', hs, ttl)
return {dup, c1, #ids, devs, n, s1, s2, first or tostring(at)}
`)

// Observe records o and returns the user's snapshot (risk.Snapshot says
// what it holds), in one script run.
func (c *Counters) Observe(ctx context.Context, o risk.Observation) (risk.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return risk.Snapshot{}, err
	}
	tag := c.prefix + "{" + o.UserID + "}"
	at := o.At.UnixMicro()
	lnAmount := 0.0
	if o.AmountMinor > 0 {
		lnAmount = math.Log(float64(o.AmountMinor))
	}
	res, err := observeScript.Run(ctx, c.rdb, []string{tag + ":o", tag + ":d", tag + ":s"},
		o.OrderID, o.DeviceID, at, strconv.FormatFloat(lnAmount, 'g', -1, 64),
		c.retention.Milliseconds(), c.maxEvents).Slice()
	if err != nil {
		return risk.Snapshot{}, fmt.Errorf("rediscounters: observe: %w", err)
	}
	return parse(res)
}

func parse(res []any) (risk.Snapshot, error) {
	if len(res) != 8 {
		return risk.Snapshot{}, fmt.Errorf("rediscounters: script returned %d values, want 8", len(res))
	}
	var ints [4]int64
	for i := range ints {
		v, ok := res[i].(int64)
		if !ok {
			return risk.Snapshot{}, fmt.Errorf("rediscounters: value %d is %T, want an integer", i, res[i])
		}
		ints[i] = v
	}
	var fl [4]float64
	for i := range fl {
		s, ok := res[4+i].(string)
		if !ok {
			return risk.Snapshot{}, fmt.Errorf("rediscounters: value %d is %T, want a string", 4+i, res[4+i])
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return risk.Snapshot{}, fmt.Errorf("rediscounters: value %d: %w", 4+i, err)
		}
		fl[i] = v
	}
	s := risk.Snapshot{
		Duplicate: ints[0] == 1, Orders1h: int(ints[1]), Orders24h: int(ints[2]), Devices24h: int(ints[3]),
		PriorOrders: int(fl[0]), FirstSeen: time.UnixMicro(int64(fl[3])).UTC(),
	}
	if n := fl[0]; n > 0 {
		s.MeanLogAmount = fl[1] / n
		s.StdLogAmount = math.Sqrt(max(0, fl[2]/n-s.MeanLogAmount*s.MeanLogAmount))
	}
	return s, nil
}
