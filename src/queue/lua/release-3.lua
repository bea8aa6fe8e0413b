-- Releases postbacks held for an origin (paused, or its breaker open) once
-- it may be called again: up to ARGV[2] entries, the first to expire first
-- (members are scored by when their TTL runs out), back to the retry
-- stream, no attempt counted. While the origin is still held, ARGV[4] = now
-- releases only what has expired, so that it is logged as expired on time. The held set is
-- <held prefix><origin> under the shard's hash tag (the declared keys'
-- slot); members are "<postbacks>:<entry>".
-- KEYS[1] held index (hash: origin -> postbacks held)   KEYS[2] retry stream
-- KEYS[3] the origin's held set
-- ARGV[1] origin   ARGV[2] most entries to move
-- ARGV[3] 'p': the entries are a circuit breaker's probe (marked so in the
--   stream: the process that reads them sends the first postback while the
--   breaker is open); '' otherwise
-- ARGV[4] highest score to release ('+inf': any)
-- Returns { entries moved, postbacks moved, postbacks still held }.
local set = KEYS[3]
local members = redis.call('ZRANGEBYSCORE', set, '-inf', ARGV[4], 'LIMIT', 0, tonumber(ARGV[2]))
local postbacks = 0
if #members > 0 then
  -- ZREM first: a release frees what it adds (a full Redis lets it run).
  redis.call('ZREM', set, unpack(members))
  for _, member in ipairs(members) do
    local colon = string.find(member, ':', 1, true)
    postbacks = postbacks + tonumber(string.sub(member, 1, colon - 1))
    if ARGV[3] == 'p' then
      redis.call('XADD', KEYS[2], '*', 'm', string.sub(member, colon + 1), 'p', '1')
    else
      redis.call('XADD', KEYS[2], '*', 'm', string.sub(member, colon + 1))
    end
  end
end
-- (Nothing moved: no HINCRBY by -0, which Redis refuses as "not an integer".)
local left
if postbacks > 0 then
  left = redis.call('HINCRBY', KEYS[1], ARGV[1], -postbacks)
else
  left = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
end
if left <= 0 or redis.call('EXISTS', set) == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  left = 0
end
return { #members, postbacks, left }
