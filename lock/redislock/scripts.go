package redislock

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// scripts are a Locker's Lua scripts (see the ones below, and lib). The
// prefix of the Lockers' grant channels and how long a waiter keeps its
// place are written into their text, as __WAKE__ and __KEEP__, rather than passed
// with every call: each argument is one more string for Redis to read,
// allocate and free, and an uncontended cycle needs neither. Lockers with
// the same prefix share the scripts' SHA in Redis's script cache.
type scripts struct {
	acquire, leave, release *redis.Script
}

// fastAcquireScript and fastReleaseScript are the uncontended cycle. They
// touch two keys and one key, and pass what they cannot settle to the
// Locker's full scripts: see fastAcquire and fastRelease.
var (
	fastAcquireScript = newHotScript(fastAcquire)
	fastReleaseScript = newHotScript(fastRelease)
)

// hotScript is a script of the uncontended cycle. It runs through Do on
// keys and arguments the caller boxed once per Acquire: Script.Run boxes
// every key and argument again on each call, and takes a lock.
type hotScript struct {
	src  string
	hash any // the SHA1 of src, boxed once
}

func newHotScript(src string) hotScript {
	return hotScript{src: src, hash: redis.NewScript(src).Hash()}
}

// run runs the script on numkeys keys followed by the arguments, all in
// argv, as Script.Run does: EVALSHA, then EVAL if Redis does not have the
// script yet.
func (h hotScript) run(ctx context.Context, rdb redis.UniversalClient, numkeys int, argv ...any) *redis.Cmd {
	args := make([]any, 0, 3+len(argv))
	args = append(args, "evalsha", h.hash, numkeys)
	args = append(args, argv...)
	cmd := rdb.Do(ctx, args...)
	if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		args[0], args[1] = "eval", h.src
		cmd = rdb.Do(ctx, args...)
	}
	return cmd
}

func newScripts(wake string) scripts {
	r := strings.NewReplacer(
		"__WAKE__", luaString(wake),
		"__KEEP__", strconv.FormatInt(queueKeep.Milliseconds(), 10),
		"__SEEDMIN__", seedMin)
	return scripts{
		acquire: redis.NewScript(r.Replace(acquireSrc)),
		leave:   redis.NewScript(r.Replace(leaveSrc)),
		release: redis.NewScript(r.Replace(releaseSrc)),
	}
}

// luaString quotes s as a Lua 5.1 string literal: printable ASCII as is,
// every other byte, and the quote and backslash, as a decimal escape.
func luaString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b.WriteByte(c)
			continue
		}
		b.WriteString("\\")
		b.WriteString(strconv.Itoa(int(c) + 1000)[1:])
	}
	b.WriteByte('"')
	return b.String()
}

// Every script works on the same key list (the fast ones on its start):
//
//	KEYS[1] the lock: the holder's waiter id, with a PX expiry; "+" is
//	        appended while anybody is queued (see sync)
//	KEYS[2] the token counter, kept without expiry; its lowest bit is set
//	        while anybody is queued (see sync)
//	KEYS[3] the queue of waiters (a list of waiter ids, oldest first)
//	KEYS[4] each waiter's deadline to come back (a sorted set, server ms)
//
// A waiter id is "<Locker id>:<seq>:<ttl ms>": the Locker id names the
// channel on which that Locker hears about grants, the ttl is what the waiter
// asked for. Every Acquire has an id of its own, so the id alone says who
// holds the lock.
//
// Tokens. Each lock taken adds 2 to the counter, and the token is the
// counter's new value. When the counter is missing (the lock was never taken,
// Redis restarted empty, or the key was deleted or evicted) INCRBY starts it
// from 0, and a value below seedMin makes the script start it over at twice
// the server's clock in µs (TIME) instead, keeping its lowest bit. Tokens
// therefore only go back if, before the counter was lost, more locks were
// taken (or fast tries found the lock free while somebody was queued, which
// also adds 2) than µs had passed since it started (more than one Acquire
// per µs on one lock name, sustained: Redis runs one script at a time and
// each takes several µs), or if the server's clock stepped back by more than the restart
// took. TIME is the server's clock, so clients' clocks never matter. The
// values stay below 2^53 (until the year 2112), where Lua's doubles are
// still exact integers.
//
// Between two mints the counter moves by at most its lowest bit (sync), so
// it never falls below the last token minted minus one, and the next mint
// (+2) is above that token: tokens strictly increase.
const seedMin = "1099511627776" // 2^40; real counters are ~3.5e15

// fastAcquire takes a free lock when nobody is queued: SET NX PX and INCRBY,
// two keys, no function defined. It answers the token, or 0 when the lock is
// held or somebody is queued (an odd counter): the caller then runs the full
// acquire script. When the lock is held the counter is not touched.
// KEYS[1] the lock, KEYS[2] the counter; ARGV[1] ttl in ms; ARGV[2] the
// caller's waiter id.
const fastAcquire = `
if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[1]) then
	return 0
end
local c = redis.call('INCRBY', KEYS[2], 2)
if c % 2 == 1 then
	redis.call('DEL', KEYS[1])
	return 0
end
if c < ` + seedMin + ` then
	local t = redis.call('TIME')
	c = (tonumber(t[1]) * 1000000 + tonumber(t[2])) * 2
	redis.call('SET', KEYS[2], string.format('%.0f', c))
end
return c
`

// mintInline is mint (see lib) for a script's start, before lib defines
// any function: it leaves the new token in tok, a number.
const mintInline = `
	local tok = redis.call('INCRBY', KEYS[2], 2)
	if tok < ` + seedMin + ` then
		local t = redis.call('TIME')
		tok = (tonumber(t[1]) * 1000000 + tonumber(t[2])) * 2 + tok % 2
		redis.call('SET', KEYS[2], string.format('%.0f', tok))
	end
`

// fastRelease frees the lock if it holds exactly the caller's id: nobody is
// queued (sync would have appended "+"). It answers 1, or 0 when the caller
// must run the full release script: the lock is not its own, or somebody
// waits. KEYS[1] the lock; ARGV[1] the caller's waiter id.
const fastRelease = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`

const lib = `
local function mint()
	local c = redis.call('INCRBY', KEYS[2], 2)
	if c < __SEEDMIN__ then
		local t = redis.call('TIME')
		c = (tonumber(t[1]) * 1000000 + tonumber(t[2])) * 2 + c % 2
		redis.call('SET', KEYS[2], string.format('%.0f', c))
	end
	return string.format('%.0f', c)
end

local function now_ms()
	local t = redis.call('TIME')
	return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Whether lock value v is waiter id's (marked or not).
local function owns(v, id)
	return v == id or v == id .. '+'
end

-- Makes the marks agree with the queue: the counter's lowest bit and the
-- "+" after the lock's value are set while anybody is queued, so that the
-- fast scripts, which do not look at the queue, never take a lock out of
-- turn or free one without handing it over. Every script that changes the
-- queue or sets the lock calls it last. A mark left after the queue
-- expired only sends the next caller to the full script, which clears it.
local function sync()
	local queued = redis.call('LINDEX', KEYS[3], 0)
	local c = tonumber(redis.call('GET', KEYS[2]))
	if not c then
		if queued then
			redis.call('SET', KEYS[2], 1)
		end
	elseif queued and c % 2 == 0 then
		redis.call('INCR', KEYS[2])
	elseif not queued and c % 2 == 1 then
		redis.call('DECR', KEYS[2])
	end
	local v = redis.call('GET', KEYS[1])
	if v then
		local marked = string.sub(v, -1) == '+'
		if queued and not marked then
			redis.call('SET', KEYS[1], v .. '+', 'KEEPTTL')
		elseif marked and not queued then
			redis.call('SET', KEYS[1], string.sub(v, 1, -2), 'KEEPTTL')
		end
	end
end

-- The first waiter whose place has not lapsed, and its deadline; waiters
-- ahead of it whose place lapsed (dead, or gone without saying so) are
-- dropped.
local function head(nowms)
	local h = redis.call('LINDEX', KEYS[3], 0)
	while h do
		local due = tonumber(redis.call('ZSCORE', KEYS[4], h))
		if due and due > nowms then
			return h, due
		end
		redis.call('LPOP', KEYS[3])
		redis.call('ZREM', KEYS[4], h)
		h = redis.call('LINDEX', KEYS[3], 0)
	end
	return nil, 0
end

-- Hands the free lock to waiter h, the head of the queue, and tells its
-- Locker on __WAKE__ .. <Locker id>. The grant lasts the waiter's ttl but no
-- longer than its place in the queue would have: a waiter that died holds
-- the others up no longer by being handed the lock. The waiter extends it to
-- its full ttl once it has it.
local function grant(h, due, nowms)
	redis.call('LPOP', KEYS[3])
	redis.call('ZREM', KEYS[4], h)
	local locker, ttl = string.match(h, '^([^:]+):[^:]+:(%d+)$')
	local px = due - nowms
	if ttl and tonumber(ttl) < px then
		px = tonumber(ttl)
	end
	redis.call('SET', KEYS[1], h, 'PX', px)
	local tok = mint()
	if locker then
		redis.call('PUBLISH', __WAKE__ .. locker, h .. ' ' .. tok)
	end
end

-- After the lock was freed: hand it to the next waiter, if any.
local function pass()
	if not redis.call('LINDEX', KEYS[3], 0) then
		return
	end
	local nowms = now_ms()
	local h, due = head(nowms)
	if h then
		grant(h, due, nowms)
	end
end
`

// acquireSrc takes the lock if it is free and it is the caller's turn, and
// mints its fencing token, in one step on the server. If the lock was handed
// to the caller while it waited, it returns that (with a token minted anew:
// the one sent with the grant never reached it). Otherwise it puts the caller
// in the lock's queue, or refreshes its place there; and if the lock is free
// but it is another waiter's turn, it hands the lock over to that waiter, who
// may be asleep.
//
// ARGV[1] ttl in ms; ARGV[2] the caller's waiter id. KEEP is how long a
// waiter keeps its place without coming back, in ms.
//
// Returns {1, "token", ms the lock surely lasts} or {0, ms after which it is
// worth trying again}.
//
// The queue makes waiters in different processes take turns: without it the
// releaser, one round trip closer to the lock than anyone it woke, takes it
// again and again, and the others starve.
const acquireSrc = lib + `
local v = redis.call('GET', KEYS[1])
if v and owns(v, ARGV[2]) then
	return {1, mint(), redis.call('PTTL', KEYS[1])}
end
local nowms = now_ms()
local h, due = head(nowms)
local res
if not v then
	if not h or h == ARGV[2] then
		if h then
			redis.call('LPOP', KEYS[3])
			redis.call('ZREM', KEYS[4], h)
		end
		redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
		res = {1, mint(), tonumber(ARGV[1])}
	else
		grant(h, due, nowms)
	end
end
if not res then
	if redis.call('ZADD', KEYS[4], nowms + __KEEP__, ARGV[2]) == 1 then
		redis.call('RPUSH', KEYS[3], ARGV[2])
	end
	redis.call('PEXPIRE', KEYS[3], 2 * __KEEP__)
	redis.call('PEXPIRE', KEYS[4], 2 * __KEEP__)
	res = {0, redis.call('PTTL', KEYS[1])}
end
sync()
return res
`

// leaveSrc takes a waiter that gives up out of the queue. If the lock was
// handed to it meanwhile, or is free, it goes to the next waiter.
// ARGV[1] waiter id.
const leaveSrc = lib + `
redis.call('LREM', KEYS[3], 0, ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
local v = redis.call('GET', KEYS[1])
if v and owns(v, ARGV[1]) then
	redis.call('DEL', KEYS[1])
	v = nil
end
if not v then
	pass()
end
sync()
return 1
`

// extendScript pushes the expiry out, only for the holder whose waiter id is
// the lock's value (marked or not). KEYS[1] the lock; ARGV[1] the id;
// ARGV[2] ttl in ms.
var extendScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] or v == ARGV[1] .. '+' then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseSrc frees the lock, only for its holder, and hands it straight to
// the first waiter in the queue: the hand-over costs the releaser's round
// trip and the message, and the waiter needs no round trip of its own. If
// nobody waits in Redis but another caller of the releaser's Locker does, it
// gets the lock instead, and its token comes back in the reply.
// ARGV[1] the holder's waiter id; ARGV[2] and ARGV[3], only when another
// caller of the releaser's Locker waits: its id and its ttl in ms.
//
// An unmarked value means nobody is queued (see sync): the release, or the
// hand-over in process, needs neither the queue nor a function, and comes
// first.
//
// Returns 0 if the caller did not hold the lock, 1 if it was freed or went
// to a waiter in the queue, or the token (a string) it was given to ARGV[2]
// under.
const releaseSrc = `
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
	if not ARGV[2] then
		redis.call('DEL', KEYS[1])
		return 1
	end
	redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
` + mintInline + `
	return string.format('%.0f', tok)
end
if v ~= ARGV[1] .. '+' then
	return 0
end
` + lib + `
local res = 1
if redis.call('LINDEX', KEYS[3], 0) then
	redis.call('DEL', KEYS[1])
	pass()
elseif ARGV[2] then
	redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
	res = mint()
else
	redis.call('DEL', KEYS[1])
end
sync()
return res
`
