package redislock

import "github.com/redis/go-redis/v9"

// acquireScript takes the lock if it is free and it is the caller's turn,
// and mints its fencing token, in one step on the server. Otherwise it puts
// the caller in the lock's queue, or refreshes its place there.
//
// KEYS[1] the lock (value: the holder's token, with a PX expiry)
// KEYS[2] the last token minted for this lock, kept without expiry
// KEYS[3] the queue of waiters (a list of waiter ids, oldest first)
// KEYS[4] each waiter's deadline to come back (a sorted set, server ms)
// ARGV[1] ttl in milliseconds
// ARGV[2] the caller's waiter id, unique per Acquire
// ARGV[3] how long a waiter keeps its place without coming back, in ms
//
// Returns {1, token} or {0, ms after which it is worth trying again}.
//
// The queue makes waiters in different processes take turns: without it the
// releaser, one round trip closer to the lock than anyone it woke, takes it
// again and again, and the others starve. A waiter that died or gave up
// without saying so loses its place once its deadline passes, so at worst it
// holds the others up for that long, like a holder that died does for a TTL.
//
// The token is max(last+1, server time in µs). The counter alone would go back
// to 1 if Redis restarts empty (this deployment runs without persistence), and
// the clock alone could repeat within a microsecond; together they only go
// back if the server's clock steps back by more than the restart took. TIME is
// the server's clock, so clients' clocks never matter. Microseconds keep the
// value below 2^53, where Lua's doubles are still exact integers.
var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nowms = math.floor(now / 1000)
local head = redis.call('LINDEX', KEYS[3], 0)
while head do
	local due = tonumber(redis.call('ZSCORE', KEYS[4], head))
	if due and due >= nowms then
		break
	end
	redis.call('LPOP', KEYS[3])
	redis.call('ZREM', KEYS[4], head)
	head = redis.call('LINDEX', KEYS[3], 0)
end
local pttl = redis.call('PTTL', KEYS[1])
if pttl == -2 and (not head or head == ARGV[2]) then
	if head then
		redis.call('LPOP', KEYS[3])
		redis.call('ZREM', KEYS[4], ARGV[2])
	end
	local last = tonumber(redis.call('GET', KEYS[2]))
	local tok = now
	if last and tok <= last then
		tok = last + 1
	end
	local s = string.format('%.0f', tok)
	redis.call('SET', KEYS[2], s)
	redis.call('SET', KEYS[1], s, 'NX', 'PX', ARGV[1])
	return {1, s}
end
local keep = tonumber(ARGV[3])
if redis.call('ZADD', KEYS[4], nowms + keep, ARGV[2]) == 1 then
	redis.call('RPUSH', KEYS[3], ARGV[2])
end
redis.call('PEXPIRE', KEYS[3], 2 * keep)
redis.call('PEXPIRE', KEYS[4], 2 * keep)
if pttl == -2 then
	-- Free, but someone else's turn: retry when that waiter's place lapses.
	return {0, tonumber(redis.call('ZSCORE', KEYS[4], head)) - nowms}
end
return {0, pttl}
`)

// leaveScript takes a waiter that gives up out of the queue, and if the lock
// is free wakes the others: it may have been that waiter's turn.
// KEYS[1] the lock; KEYS[3] queue; KEYS[4] deadlines (KEYS[2] unused, for the
// same key list as acquireScript); ARGV[1] waiter id; ARGV[2] the channel.
var leaveScript = redis.NewScript(`
redis.call('LREM', KEYS[3], 0, ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then
	redis.call('PUBLISH', ARGV[2], '')
end
return 1
`)

// extendScript pushes the expiry out, only for the holder whose token is the
// lock's value. KEYS[1] the lock; ARGV[1] token; ARGV[2] ttl in ms.
var extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript deletes the lock, only for its holder, and tells the waiters
// whose turn it is: the message is the id of the waiter at the head of the
// queue (empty if none), so the others need not wake up for nothing.
// KEYS[1] the lock; KEYS[3] the queue (the key list of acquireScript);
// ARGV[1] token; ARGV[2] the lock's wake-up channel.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('DEL', KEYS[1])
	redis.call('PUBLISH', ARGV[2], redis.call('LINDEX', KEYS[3], 0) or '')
	return 1
end
return 0
`)
