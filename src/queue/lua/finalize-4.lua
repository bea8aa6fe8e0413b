-- Records the outcomes of finished entries of one stream, each atomically
-- with its acknowledgement: an entry leaves the pending list only together
-- with its retries, dead letters and hand-backs. An entry this consumer no
-- longer owns (XACK returns 0: another consumer reclaimed and finished it)
-- writes nothing, so outcomes are never recorded twice.
-- Its first write is an XACK, which a full Redis (maxmemory, noeviction)
-- allows, and Redis then lets the whole script run: outcomes are recorded
-- and entries deleted even when Redis is full, which is how delivery
-- drains it.
-- KEYS[1] stream the entries were read from   KEYS[2] retries set
-- KEYS[3] dead-letter stream                  KEYS[4] postback count
-- ARGV[1] consumer group
-- ARGV[2..] per entry, in sequence:
--   id, finished (postbacks that left the system),
--   nRetry, then nRetry pairs of (due ms, encoded entry) for KEYS[2],
--   nDead, then nDead encoded dead letters for KEYS[3],
--   nBack, then nBack encoded entries handed back to KEYS[1]
-- Returns the number of entries acknowledged.
local i = 2
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
    redis.call('XDEL', KEYS[1], id)
    acked = acked + 1
    done = done + finished
  end
  i = i + nBack
end
if done > 0 then
  redis.call('DECRBY', KEYS[4], done)
end
return acked
