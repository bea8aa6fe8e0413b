-- Adds the postbacks of several requests with the same URL template to one
-- shard in one call (ingest gathers the requests of an event-loop turn: one
-- round trip, one script run, whatever the traffic). Each request lands
-- whole or not at all.
--
-- The shard's other keys are named from the template's (they share its
-- hash tag, so its Redis Cluster slot); they are declared too, KEYS[2..],
-- only so that Redis Cluster checks them: while the slot migrates, a call
-- whose keys are not all on one node gets ASK or TRYAGAIN instead of
-- running on the importing node beside a stream and count still on the
-- other one (scripts.ts).
-- Statistics are not counted here: ingest adds them up in memory and
-- writes them once a second (observability/stats.ts).
--
-- A full Redis (maxmemory with noeviction) refuses the whole call: Redis
-- checks memory at a script's first write and lets every later write
-- through, so the first write here is always an XADD or ZADD of a postback
-- (refused when full); the template's expiry refresh, which Redis would
-- allow even when full, comes after. Reads come first, and a call that
-- accepts nothing writes nothing.
-- KEYS[1] template key: <prefix>:{<shard>}:tpl:<template id>
-- KEYS[2..] the count, the stream and/or delayed set the requests go to,
--   and the idempotency record of each keyed request (not read here)
-- ARGV[1] template time-to-live in ms (a day more than a postback's
--   lifetime; refreshed on use once less than ARGV[1] - REFRESH_SLACK_MS
--   is left, so at most once an hour per template and shard rather than
--   one PEXPIRE, and one more command in the AOF and the replication
--   stream, per call: a template still outlives by 23 hours any postback
--   that can reference it)
-- ARGV[2] queue limit in postbacks (0: none)
-- ARGV[3] encoded template ('' when the caller believes it is stored)
-- ARGV[4] idempotency record time-to-live in ms
-- then per request a header "<postbacks>,<entries E>[,<due ms>[,i]]": a
--   due time puts it in the delayed set (else the stream); ",i" says two
--   more arguments follow, its idempotency key id (the record key is
--   <shard>idem:<id>) and its record (<fingerprint>|<request id>|<postbacks>);
--   then E encoded entries
-- Returns one value per request: entries added; -1 when the template was
-- sent as '' and is not stored (the caller sends them again with it); -2
-- when it would take the shard past the limit, and the shard is not empty
-- (nothing written for that request); or,
-- when its idempotency key was recorded within the TTL, the record (a
-- string: nothing written; the caller answers as the first time, or 422
-- when the fingerprint differs). A request's key is recorded only when it
-- is written, after its postbacks (the first write stays an XADD/ZADD).
local base = string.match(KEYS[1], '^(.*:)tpl:[^:]+$')
if not base then return redis.error_reply('ERR enqueue: KEYS[1] is not a template key') end
local stream = base .. 'stream'
local delayed = base .. 'delayed'
local count = base .. 'count'
local limit = tonumber(ARGV[2])
local REFRESH_SLACK_MS = 3600000
local ttl = tonumber(ARGV[1])
-- PTTL: -2 when the template is not stored, -1 when it has no expiry.
local pttl = -2
if ARGV[3] == '' then pttl = redis.call('PTTL', KEYS[1]) end
local stored = ARGV[3] ~= '' or pttl ~= -2
local held = tonumber(redis.call('GET', count) or '0')
local out = {}
local accepted = 0
local i = 5
while i <= #ARGV do
  local n, e, due, flag = string.match(ARGV[i], '^(%d+),(%d+),?(%d*),?(i?)$')
  if not n then return redis.error_reply('ERR enqueue: bad request header') end
  n = tonumber(n)
  e = tonumber(e)
  i = i + 1
  local idem = ''
  local record = ''
  if flag == 'i' then
    idem = base .. 'idem:' .. ARGV[i]
    record = ARGV[i + 1]
    i = i + 2
  end
  local seen = idem ~= '' and redis.call('GET', idem)
  if seen then
    out[#out + 1] = seen
  elseif not stored then
    out[#out + 1] = -1
  elseif limit > 0 and held + n > limit and held > 0 then
    -- An empty shard takes any one request: one larger than the shard's
    -- share of INGEST_MAX_QUEUE would otherwise be refused for ever.
    out[#out + 1] = -2
  else
    if due ~= '' then
      for j = 0, e - 1 do
        redis.call('ZADD', delayed, due, ARGV[i + j])
      end
    else
      for j = 0, e - 1 do
        redis.call('XADD', stream, '*', 'm', ARGV[i + j])
      end
    end
    if idem ~= '' then
      redis.call('SET', idem, record, 'PX', ARGV[4])
    end
    held = held + n
    accepted = accepted + n
    out[#out + 1] = e
  end
  i = i + e
end
if accepted > 0 then
  if ARGV[3] == '' then
    if pttl < ttl - REFRESH_SLACK_MS then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
  else
    redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[1])
  end
  redis.call('INCRBY', count, accepted)
end
return out
