-- Records the outcomes of finished entries of one stream, each atomically
-- with its acknowledgement: an entry leaves the pending list only together
-- with its retries, dead letters and hand-backs. An entry this consumer no
-- longer owns (XACK returns 0: another consumer reclaimed and finished it)
-- writes nothing, so outcomes are never recorded twice.
-- Its first write is an XACK, which a full Redis (maxmemory, noeviction)
-- allows, and Redis then lets the whole script run: outcomes are recorded
-- and entries deleted even when Redis is full, which is how delivery
-- drains it.
-- Entries held for a paused partner (or one whose breaker is open) go to
-- that origin's held set, <shard>held:<origin>, scored by its due time,
-- each member "<postbacks>:<entry>", counted per origin in the held index
-- (hash <shard>held).
-- The shard's other keys are named from the stream (same hash tag, so the
-- same Redis Cluster slot), so a delivered entry costs one short header;
-- the ones a call touches are declared too, KEYS[2..], only so that Redis
-- Cluster checks them while the slot migrates (scripts.ts).
-- KEYS[1] stream the entries were read from: <prefix>:{<shard>}:stream or :retry
-- KEYS[2..] the count, and the retries set, dead-letter stream, held index
--   and held sets when the call writes to them (not read here)
-- ARGV[1] consumer group
-- ARGV[2..] per entry, in sequence, a header "<id> <finished>" (finished:
--   postbacks that left the system), or, when it has more to record,
--   "<id> <finished> <nRetry> <nDead> <nBack> <nHeld>" followed by
--   nRetry pairs of (due ms, encoded entry) for the retries set,
--   nDead encoded dead letters for the dead-letter stream,
--   nBack encoded entries handed back to KEYS[1],
--   nHeld quadruples (origin, postbacks, due ms, encoded entry)
-- Returns the number of entries acknowledged.
local base = string.match(KEYS[1], '^(.*:)[^:]+$')
if not base then return redis.error_reply('ERR finalize: KEYS[1] is not a stream key') end
local retries = base .. 'retries'
local dead = base .. 'dead'
local heldIndex = base .. 'held'
local heldPrefix = base .. 'held:'
local i = 2
local acked = 0
local done = 0
while i <= #ARGV do
  local id, finished, nRetry, nDead, nBack, nHeld = string.match(ARGV[i], '^(%S+) (%d+) ?(%d*) ?(%d*) ?(%d*) ?(%d*)$')
  if not id then return redis.error_reply('ERR finalize: bad entry header') end
  nRetry = tonumber(nRetry) or 0
  nDead = tonumber(nDead) or 0
  nBack = tonumber(nBack) or 0
  nHeld = tonumber(nHeld) or 0
  i = i + 1
  local own = redis.call('XACK', KEYS[1], ARGV[1], id) == 1
  if own then
    for j = 0, nRetry - 1 do
      redis.call('ZADD', retries, ARGV[i + 2 * j], ARGV[i + 2 * j + 1])
    end
  end
  i = i + 2 * nRetry
  if own then
    for j = 0, nDead - 1 do
      redis.call('XADD', dead, '*', 'm', ARGV[i + j])
    end
  end
  i = i + nDead
  if own then
    for j = 0, nBack - 1 do
      redis.call('XADD', KEYS[1], '*', 'm', ARGV[i + j])
    end
  end
  i = i + nBack
  if own then
    for j = 0, nHeld - 1 do
      local o = i + 4 * j
      redis.call('ZADD', heldPrefix .. ARGV[o], ARGV[o + 2], ARGV[o + 1] .. ':' .. ARGV[o + 3])
      redis.call('HINCRBY', heldIndex, ARGV[o], ARGV[o + 1])
    end
    redis.call('XDEL', KEYS[1], id)
    acked = acked + 1
    done = done + tonumber(finished)
  end
  i = i + 4 * nHeld
end
if done > 0 then
  redis.call('DECRBY', base .. 'count', done)
end
return acked
