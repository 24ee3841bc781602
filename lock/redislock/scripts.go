package redislock

import "github.com/redis/go-redis/v9"

// acquireScript takes the lock if it is free and mints its fencing token, in
// one step on the server.
//
// KEYS[1] the lock (value: the holder's token, with a PX expiry)
// KEYS[2] the last token minted for this lock, kept without expiry
// ARGV[1] ttl in milliseconds
//
// Returns {1, token} or {0, pttl of the current holder}.
//
// The token is max(last+1, server time in µs). The counter alone would go back
// to 1 if Redis restarts empty (this deployment runs without persistence), and
// the clock alone could repeat within a microsecond; together they only go
// back if the server's clock steps back by more than the restart took. TIME is
// the server's clock, so clients' clocks never matter. Microseconds keep the
// value below 2^53, where Lua's doubles are still exact integers.
var acquireScript = redis.NewScript(`
local pttl = redis.call('PTTL', KEYS[1])
if pttl ~= -2 then
	return {0, pttl}
end
local t = redis.call('TIME')
local tok = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[2]))
if last and tok <= last then
	tok = last + 1
end
local s = string.format('%.0f', tok)
redis.call('SET', KEYS[2], s)
redis.call('SET', KEYS[1], s, 'NX', 'PX', ARGV[1])
return {1, s}
`)

// extendScript pushes the expiry out, only for the holder whose token is the
// lock's value. KEYS[1] the lock; ARGV[1] token; ARGV[2] ttl in ms.
var extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript deletes the lock, only for its holder, and wakes the waiters.
// KEYS[1] the lock; ARGV[1] token; ARGV[2] the lock's wake-up channel.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('DEL', KEYS[1])
	redis.call('PUBLISH', ARGV[2], ARGV[1])
	return 1
end
return 0
`)
