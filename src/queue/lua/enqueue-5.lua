-- Adds one request's postback entries to a shard, all or none.
-- KEYS[1] template key (content-addressed)   KEYS[2] stream (first attempts)
-- KEYS[3] delayed set                        KEYS[4] postback count
-- KEYS[5] statistics bucket of this second
-- ARGV[1] encoded template, or '' when the caller believes it is stored
-- ARGV[2] template time-to-live in ms (refreshed on every call)
-- ARGV[3] due time in ms epoch: entries go to the delayed set when it is
--         later than ARGV[4] (now), else straight to the stream
-- ARGV[4] now, ms epoch
-- ARGV[5] number of postbacks in the entries
-- ARGV[6] queue limit in postbacks (0: none)
-- ARGV[7] statistics retention in seconds
-- ARGV[8..] encoded entries, in order
-- Returns the number of entries added; -1 when ARGV[1] is '' and the
-- template is not stored (the caller sends again with it); -2 when the
-- shard already holds the limit (nothing written).
local limit = tonumber(ARGV[6])
local n = tonumber(ARGV[5])
if limit > 0 then
  local held = tonumber(redis.call('GET', KEYS[4]) or '0')
  if held + n > limit then
    return -2
  end
end
if ARGV[1] == '' then
  if redis.call('PEXPIRE', KEYS[1], ARGV[2]) == 0 then
    return -1
  end
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
local due = tonumber(ARGV[3])
if due > tonumber(ARGV[4]) then
  for i = 8, #ARGV do
    redis.call('ZADD', KEYS[3], due, ARGV[i])
  end
else
  for i = 8, #ARGV do
    redis.call('XADD', KEYS[2], '*', 'm', ARGV[i])
  end
end
redis.call('INCRBY', KEYS[4], n)
redis.call('HINCRBY', KEYS[5], 'accepted', n)
redis.call('HINCRBY', KEYS[5], 'requests', 1)
redis.call('EXPIRE', KEYS[5], ARGV[7])
return #ARGV - 7
