-- Adds the postbacks of several requests with the same URL template to one
-- shard in one call (ingest gathers the requests of an event-loop turn: one
-- round trip, one script run, whatever the traffic). Each request lands
-- whole or not at all. A fixed number of keys, so Redis Cluster clients
-- route it by its keys (all under the shard's hash tag).
--
-- A full Redis (maxmemory with noeviction) refuses the whole call: Redis
-- checks memory at a script's first write and lets every later write
-- through, so the first write here is always an XADD or ZADD of a postback
-- (refused when full); the template's expiry refresh, which Redis would
-- allow even when full, comes after. Reads come first, and a call that
-- accepts nothing writes nothing.
-- KEYS[1] stream (first attempts)   KEYS[2] delayed set   KEYS[3] postback count
-- KEYS[4] statistics bucket of this second
-- KEYS[5] template key (content-addressed)
-- ARGV[1] template time-to-live in ms (refreshed on every use)
-- ARGV[2] now, ms epoch
-- ARGV[3] queue limit in postbacks (0: none)
-- ARGV[4] statistics retention in seconds
-- ARGV[5] encoded template ('' when the caller believes it is stored)
-- ARGV[6] idempotency record time-to-live in ms
-- then per request: due time (ms epoch; later than now: to the delayed
--   set), postbacks, entries E, idempotency key ('' for none: a key under
--   this shard's hash tag, so in the declared keys' slot), its record
--   (<fingerprint>|<request id>|<postbacks>), then E encoded entries
-- Returns one value per request: entries added; -1 when the template was
-- sent as '' and is not stored (the caller sends them again with it); -2
-- when the shard holds the limit (nothing written for that request); or,
-- when its idempotency key was recorded within the TTL, the record (a
-- string: nothing written; the caller answers as the first time, or 422
-- when the fingerprint differs). A request's key is recorded only when it
-- is written, after its postbacks (the first write stays an XADD/ZADD).
local ttl = ARGV[1]
local now = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local stored = ARGV[5] ~= '' or redis.call('EXISTS', KEYS[5]) == 1
local held = tonumber(redis.call('GET', KEYS[3]) or '0')
local out = {}
local accepted = 0
local requests = 0
local i = 7
while i <= #ARGV do
  local due = tonumber(ARGV[i])
  local n = tonumber(ARGV[i + 1])
  local e = tonumber(ARGV[i + 2])
  local idem = ARGV[i + 3]
  local record = ARGV[i + 4]
  i = i + 5
  local seen = idem ~= '' and redis.call('GET', idem)
  if seen then
    out[#out + 1] = seen
  elseif not stored then
    out[#out + 1] = -1
  elseif limit > 0 and held + n > limit then
    out[#out + 1] = -2
  else
    if due > now then
      for j = 0, e - 1 do
        redis.call('ZADD', KEYS[2], due, ARGV[i + j])
      end
    else
      for j = 0, e - 1 do
        redis.call('XADD', KEYS[1], '*', 'm', ARGV[i + j])
      end
    end
    if idem ~= '' then
      redis.call('SET', idem, record, 'PX', ARGV[6])
    end
    held = held + n
    accepted = accepted + n
    requests = requests + 1
    out[#out + 1] = e
  end
  i = i + e
end
if accepted > 0 then
  if ARGV[5] == '' then
    redis.call('PEXPIRE', KEYS[5], ttl)
  else
    redis.call('SET', KEYS[5], ARGV[5], 'PX', ttl)
  end
  redis.call('INCRBY', KEYS[3], accepted)
  redis.call('HINCRBY', KEYS[4], 'accepted', accepted)
  redis.call('HINCRBY', KEYS[4], 'requests', requests)
  redis.call('EXPIRE', KEYS[4], ARGV[4])
end
return out
