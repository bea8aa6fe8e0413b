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
-- that origin's held set, <held prefix><origin>, under the shard's hash
-- tag (the same slot as the declared keys), each member "<postbacks>:<entry>"
-- scored by its due time, counted per origin in the held index.
-- KEYS[1] stream the entries were read from   KEYS[2] retries set
-- KEYS[3] dead-letter stream                  KEYS[4] postback count
-- KEYS[5] held index (hash: origin -> postbacks held)
-- ARGV[1] consumer group   ARGV[2] held set prefix
-- ARGV[3..] per entry, in sequence:
--   id, finished (postbacks that left the system),
--   nRetry, then nRetry pairs of (due ms, encoded entry) for KEYS[2],
--   nDead, then nDead encoded dead letters for KEYS[3],
--   nBack, then nBack encoded entries handed back to KEYS[1],
--   nHeld, then nHeld quadruples (origin, postbacks, due ms, encoded entry)
-- Returns the number of entries acknowledged.
local i = 3
local acked = 0
local done = 0
while i <= #ARGV do
  local id = ARGV[i]
  local finished = tonumber(ARGV[i + 1])
  local own = redis.call('XACK', KEYS[1], ARGV[1], id) == 1
  i = i + 2
  local nRetry = tonumber(ARGV[i])
  i = i + 1
  if own then
    for j = 0, nRetry - 1 do
      redis.call('ZADD', KEYS[2], ARGV[i + 2 * j], ARGV[i + 2 * j + 1])
    end
  end
  i = i + 2 * nRetry
  local nDead = tonumber(ARGV[i])
  i = i + 1
  if own then
    for j = 0, nDead - 1 do
      redis.call('XADD', KEYS[3], '*', 'm', ARGV[i + j])
    end
  end
  i = i + nDead
  local nBack = tonumber(ARGV[i])
  i = i + 1
  if own then
    for j = 0, nBack - 1 do
      redis.call('XADD', KEYS[1], '*', 'm', ARGV[i + j])
    end
  end
  i = i + nBack
  local nHeld = tonumber(ARGV[i])
  i = i + 1
  if own then
    for j = 0, nHeld - 1 do
      local o = i + 4 * j
      redis.call('ZADD', ARGV[2] .. ARGV[o], ARGV[o + 2], ARGV[o + 1] .. ':' .. ARGV[o + 3])
      redis.call('HINCRBY', KEYS[5], ARGV[o], ARGV[o + 1])
    end
    redis.call('XDEL', KEYS[1], id)
    acked = acked + 1
    done = done + finished
  end
  i = i + 4 * nHeld
end
if done > 0 then
  redis.call('DECRBY', KEYS[4], done)
end
return acked
