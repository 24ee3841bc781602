package redislock

import "github.com/redis/go-redis/v9"

// Every script works on the same key list:
//
//	KEYS[1] the lock: "<token> <owner id>", with a PX expiry
//	KEYS[2] the last token minted for this lock, kept without expiry
//	KEYS[3] the queue of waiters (a list of waiter ids, oldest first)
//	KEYS[4] each waiter's deadline to come back (a sorted set, server ms)
//
// A waiter id is "<Locker id>:<seq>:<ttl ms>": the Locker id names the
// channel on which that Locker hears about grants, the ttl is what the waiter
// asked for.
//
// The token is max(last+1, server time in µs). The counter alone would go back
// to 1 if Redis restarts empty (this deployment runs without persistence), and
// the clock alone could repeat within a microsecond; together they only go
// back if the server's clock steps back by more than the restart took. TIME is
// the server's clock, so clients' clocks never matter. Microseconds keep the
// value below 2^53, where Lua's doubles are still exact integers.
const lib = `
local function now_us()
	local t = redis.call('TIME')
	return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function mint(now)
	local s = string.format('%.0f', now)
	local last = tonumber(redis.call('SET', KEYS[2], s, 'GET'))
	if last and now <= last then
		s = string.format('%.0f', last + 1)
		redis.call('SET', KEYS[2], s)
	end
	return s
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
-- Locker on <wake prefix><Locker id>. The grant lasts the waiter's ttl but no
-- longer than its place in the queue would have: a waiter that died holds
-- the others up no longer by being handed the lock. The waiter extends it to
-- its full ttl once it has it.
local function grant(h, due, now, wake)
	redis.call('LPOP', KEYS[3])
	redis.call('ZREM', KEYS[4], h)
	local locker, ttl = string.match(h, '^([^:]+):[^:]+:(%d+)$')
	local px = due - math.floor(now / 1000)
	if ttl and tonumber(ttl) < px then
		px = tonumber(ttl)
	end
	local tok = mint(now)
	redis.call('SET', KEYS[1], tok .. ' ' .. h, 'PX', px)
	if locker then
		redis.call('PUBLISH', wake .. locker, h .. ' ' .. tok)
	end
end

-- After the lock was freed: hand it to the next waiter, if any.
local function pass(wake)
	if not redis.call('LINDEX', KEYS[3], 0) then
		return
	end
	local now = now_us()
	local h, due = head(math.floor(now / 1000))
	if h then
		grant(h, due, now, wake)
	end
end

local function owner(v)
	return string.match(v, '^%d+ (.*)$')
end
`

// fastAcquire is the start of acquireScript: when nobody waits and the lock
// is free it takes it and mints the token in four calls (TIME, LINDEX, SET NX,
// SET GET), before the script defines any function. It leaves now set.
const fastAcquire = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if not redis.call('LINDEX', KEYS[3], 0) then
	local s = string.format('%.0f', now)
	if redis.call('SET', KEYS[1], s .. ' ' .. ARGV[2], 'NX', 'PX', ARGV[1]) then
		local last = tonumber(redis.call('SET', KEYS[2], s, 'GET'))
		if last and now <= last then
			s = string.format('%.0f', last + 1)
			redis.call('SET', KEYS[2], s)
			redis.call('SET', KEYS[1], s .. ' ' .. ARGV[2], 'XX', 'PX', ARGV[1])
		end
		return {1, s, tonumber(ARGV[1])}
	end
end
`

// acquireScript takes the lock if it is free and it is the caller's turn,
// and mints its fencing token, in one step on the server. If the lock was
// handed to the caller while it waited, it returns that. Otherwise it puts
// the caller in the lock's queue, or refreshes its place there; and if the
// lock is free but it is another waiter's turn, it hands the lock over to
// that waiter, who may be asleep.
//
// ARGV[1] ttl in ms; ARGV[2] the caller's waiter id; ARGV[3] how long a
// waiter keeps its place without coming back, in ms; ARGV[4] the prefix of
// the Lockers' grant channels.
//
// Returns {1, token, ms the lock surely lasts} or {0, ms after which it is
// worth trying again}.
//
// The queue makes waiters in different processes take turns: without it the
// releaser, one round trip closer to the lock than anyone it woke, takes it
// again and again, and the others starve.
//
// Every redis.call costs a few µs of the server's single thread, and so does
// each local function the script defines; an uncontended Acquire is most of
// the traffic, so it takes a path of its own first (fastAcquire).
var acquireScript = redis.NewScript(fastAcquire + lib + `
local v = redis.call('GET', KEYS[1])
local nowms = math.floor(now / 1000)
local h, due = head(nowms)
if not v then
	if not h or h == ARGV[2] then
		if h then
			redis.call('LPOP', KEYS[3])
			redis.call('ZREM', KEYS[4], h)
		end
		local tok = mint(now)
		redis.call('SET', KEYS[1], tok .. ' ' .. ARGV[2], 'PX', ARGV[1])
		return {1, tok, tonumber(ARGV[1])}
	end
	grant(h, due, now, ARGV[4])
elseif owner(v) == ARGV[2] then
	return {1, string.match(v, '^%d+'), redis.call('PTTL', KEYS[1])}
end
local keep = tonumber(ARGV[3])
if redis.call('ZADD', KEYS[4], nowms + keep, ARGV[2]) == 1 then
	redis.call('RPUSH', KEYS[3], ARGV[2])
end
redis.call('PEXPIRE', KEYS[3], 2 * keep)
redis.call('PEXPIRE', KEYS[4], 2 * keep)
return {0, redis.call('PTTL', KEYS[1])}
`)

// leaveScript takes a waiter that gives up out of the queue. If the lock was
// handed to it meanwhile, or is free, it goes to the next waiter.
// ARGV[1] waiter id; ARGV[2] the prefix of the grant channels.
var leaveScript = redis.NewScript(lib + `
redis.call('LREM', KEYS[3], 0, ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
local v = redis.call('GET', KEYS[1])
if v and owner(v) == ARGV[1] then
	redis.call('DEL', KEYS[1])
	v = nil
end
if not v then
	pass(ARGV[2])
end
return 1
`)

// extendScript pushes the expiry out, only for the holder whose token is the
// lock's value. KEYS[1] the lock; ARGV[1] its value; ARGV[2] ttl in ms.
var extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript frees the lock, only for its holder, and hands it straight to
// the first waiter in the queue: the hand-over costs the releaser's round
// trip and the message, and the waiter needs no round trip of its own. If
// nobody waits in Redis but another caller of the releaser's Locker does, it
// gets the lock instead, and its token comes back in the reply.
// ARGV[1] the lock's value; ARGV[2] the prefix of the grant channels;
// ARGV[3] the id of the releaser's Locker's next caller, or ""; ARGV[4] its
// ttl in ms.
//
// Returns 0 if the caller did not hold the lock, 1 if it was freed or went
// to a waiter in the queue, or the token it was given to ARGV[3] under.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
	return 0
end
if not redis.call('LINDEX', KEYS[3], 0) then
	if ARGV[3] == '' then
		redis.call('DEL', KEYS[1])
		return 1
	end
	local t = redis.call('TIME')
	local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
	local s = string.format('%.0f', now)
	local last = tonumber(redis.call('SET', KEYS[2], s, 'GET'))
	if last and now <= last then
		s = string.format('%.0f', last + 1)
		redis.call('SET', KEYS[2], s)
	end
	redis.call('SET', KEYS[1], s .. ' ' .. ARGV[3], 'PX', ARGV[4])
	return s
end
redis.call('DEL', KEYS[1])
` + lib + `
pass(ARGV[2])
return 1
`)
