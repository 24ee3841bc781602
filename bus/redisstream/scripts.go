package redisstream

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Every key a script touches is declared in KEYS, and on a Redis Cluster
// every call touches the keys of ONE partition only (its stream, its dead
// letters, its done markers), which share the partition's hash tag. Only
// off a cluster does one ackScript call serve several partitions.

// ackScript acknowledges entries and marks their events done, atomically:
// a crash leaves either both or neither, so an acknowledged event is always
// recognised when the relay publishes it again, and an event not marked is
// never acknowledged. It runs only after the handlers succeeded; a failed
// handler's entry stays pending and is delivered again.
//
// One call serves many partitions (off a cluster, all of a flush): the
// script's set-up is paid once per flush, not once per partition. KEYS are
// pairs of a stream and its current done-marker bucket (a set). ARGV[1]
// group, ARGV[2] the bucket's TTL in seconds, then per key pair: k, n, the
// k event ids to mark, the n entry ids to acknowledge. It returns the
// number of entries acknowledged.
var ackScript = redis.NewScript(`
local i, acked = 3, 0
for j = 1, #KEYS, 2 do
  local k, n = tonumber(ARGV[i]), tonumber(ARGV[i+1])
  i = i + 2
  if k > 0 then
    redis.call('SADD', KEYS[j+1], unpack(ARGV, i, i + k - 1))
    redis.call('EXPIRE', KEYS[j+1], ARGV[2])
  end
  i = i + k
  if n > 0 then
    acked = acked + redis.call('XACK', KEYS[j], ARGV[1], unpack(ARGV, i, i + n - 1))
  end
  i = i + n
end
return acked
`)

// deadScript copies an event to the dead letters, only if its entry is
// still pending (another consumer that acknowledged it first wins; no
// duplicate dead letter). An entry of one event is acknowledged in the
// same step; a batch entry stays pending until its other events settle,
// and may be delivered again before that (its consumer died or stopped).
// So an event of a batch is also recorded in a set per entry and group,
// and an event already in it is not copied again.
//
// KEYS[1] stream, KEYS[2] dead-letter stream, KEYS[3] the set of the
// entry's events the group dead-lettered. ARGV[1] group, ARGV[2] entry
// id, ARGV[3] 1 to acknowledge the entry too (go-redis sends true as 1),
// ARGV[4] the event id (for a batch), ARGV[5] the set's TTL in seconds,
// ARGV[6..] the dead letter's fields. Returns 1 when copied, 2 when an
// earlier delivery copied it, 0 when the entry is no longer pending.
var deadScript = redis.NewScript(`
if ARGV[3] == '1' then
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
else
  if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1) == 0 then return 0 end
  if redis.call('SADD', KEYS[3], ARGV[4]) == 0 then return 2 end
  redis.call('EXPIRE', KEYS[3], ARGV[5])
end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 6))
return 1
`)

// touchScript resets the idle time of entries a consumer still owns, with
// XCLAIM … JUSTID (which does not count a delivery), so a handler that runs
// long keeps its entry; with a retry count it also records the delivery
// about to start. It never takes an entry another consumer has claimed in
// the meantime: those are returned as lost.
//
// KEYS[1] stream. ARGV[1] group, ARGV[2] consumer, ARGV[3] retry count or
// 0 for none, ARGV[4..] entry ids.
var touchScript = redis.NewScript(`
local lost, mine = {}, {KEYS[1], ARGV[1], ARGV[2], 0}
for i = 4, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p == 0 then lost[#lost+1] = ARGV[i] else mine[#mine+1] = ARGV[i] end
end
if #mine > 4 then
  mine[#mine+1] = 'JUSTID'
  if ARGV[3] ~= '0' then
    mine[#mine+1] = 'RETRYCOUNT'
    mine[#mine+1] = ARGV[3]
  end
  redis.call('XCLAIM', unpack(mine))
end
return lost
`)

// redriveScript moves a dead letter back into its stream as a new entry
// that only its group handles, and deletes it from the dead letters, in one
// step. It returns 0 when there is no such dead letter.
//
// KEYS[1] dead-letter stream, KEYS[2] stream. ARGV[1] dead letter id.
var redriveScript = redis.NewScript(`
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return 0 end
local f, out, grp = e[1][2], {KEYS[2], '*'}, ''
for i = 1, #f, 2 do
  local k = f[i]
  if k == 'dl:group' then grp = f[i+1]
  elseif string.sub(k, 1, 3) ~= 'dl:' and k ~= 'only' then
    out[#out+1] = k
    out[#out+1] = f[i+1]
  end
end
out[#out+1] = 'only'
out[#out+1] = grp
redis.call('XADD', unpack(out))
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
`)

// trimScript trims a stream by MINID to the oldest entry some group still
// needs: per group the oldest pending entry or, when nothing is pending, its
// last-delivered id (everything after it is undelivered). Never MAXLEN, which
// would drop pending and undelivered entries. Computing and trimming in one
// script means no consumer moves in between. ARGV[1], when not "0", is a
// retention floor: entries at or after it are kept regardless.
//
// KEYS[1] stream. ARGV[1] floor id or "0". Returns the entries trimmed.
var trimScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local function less(x, y)
  local a1, b1 = string.match(x, '^(%d+)-(%d+)$')
  local a2, b2 = string.match(y, '^(%d+)-(%d+)$')
  a1, b1, a2, b2 = tonumber(a1), tonumber(b1), tonumber(a2), tonumber(b2)
  return a1 < a2 or (a1 == a2 and b1 < b2)
end
local minid = nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, keep
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i+1] elseif g[i] == 'last-delivered-id' then keep = g[i+1] end
  end
  local p = redis.call('XPENDING', KEYS[1], name)
  if p[1] > 0 and less(p[2], keep) then keep = p[2] end
  if minid == nil or less(keep, minid) then minid = keep end
end
if minid == nil then return 0 end
if ARGV[1] ~= '0' and less(ARGV[1], minid) then minid = ARGV[1] end
return redis.call('XTRIM', KEYS[1], 'MINID', minid)
`)

// forgetScript deletes the group's consumers that have nothing pending and
// were idle for at least a threshold, except the caller: a process whose
// Consumer name is not stable leaves one consumer per restart otherwise.
// Checking and deleting in one script matters: a consumer deleted after it
// read new entries would take their pending entries with it, and they would
// never be delivered again.
//
// KEYS[1] stream. ARGV[1] group, ARGV[2] idle threshold in ms, ARGV[3]
// the caller's name. Returns the number deleted.
var forgetScript = redis.NewScript(`
local n = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local name, pend, idle
  for i = 1, #c, 2 do
    if c[i] == 'name' then name = c[i+1]
    elseif c[i] == 'pending' then pend = c[i+1]
    elseif c[i] == 'idle' then idle = c[i+1] end
  end
  if pend == 0 and idle >= tonumber(ARGV[2]) and name ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    n = n + 1
  end
end
return n
`)

// scriptCall is one run of a script: its keys and its arguments.
type scriptCall struct {
	keys []string
	args []any
}

// evalAll runs s once per call, in one pipeline, with EVALSHA; the calls
// that found the script missing (Redis restarted, or its scripts were
// flushed) run again with EVAL, which caches it again. It returns each
// call's command, and the first error.
func evalAll(ctx context.Context, rdb redis.UniversalClient, s *redis.Script, calls []scriptCall) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	pipe := rdb.Pipeline()
	for i, c := range calls {
		cmds[i] = s.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, err := pipe.Exec(ctx)
	if err == nil {
		return cmds, nil
	}
	var again []int
	for i, c := range cmds {
		if isNoScript(c.Err()) {
			again = append(again, i)
		} else if c.Err() != nil {
			return cmds, c.Err()
		}
	}
	if len(again) == 0 {
		return cmds, err
	}
	pipe = rdb.Pipeline()
	for _, i := range again {
		cmds[i] = s.Eval(ctx, pipe, calls[i].keys, calls[i].args...)
	}
	_, err = pipe.Exec(ctx)
	return cmds, err
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
