-- Moves postbacks that came due from the sorted sets to their streams:
-- delayed first attempts to the stream, retries to the retry stream. One
-- script, so two delivery processes never promote the same one twice. It
-- runs in a full Redis too (see below), so retries keep flowing while
-- delivery drains it.
-- KEYS[1] delayed set   KEYS[2] stream   KEYS[3] retries set   KEYS[4] retry stream
-- KEYS[5] held index (origins with postbacks held, read only)
-- ARGV[1] now, ms epoch   ARGV[2] most to move per set
-- Returns { moved, next, held } where next is the earliest due time left in
-- either set (ms epoch), or -1 when both are empty, and held the number of
-- origins with postbacks held in this shard (0: nothing to release).
local now = ARGV[1]
local limit = tonumber(ARGV[2])
local moved = 0
for pair = 0, 1 do
  local set = KEYS[1 + 2 * pair]
  local stream = KEYS[2 + 2 * pair]
  local due = redis.call('ZRANGEBYSCORE', set, '-inf', now, 'LIMIT', 0, limit)
  if #due > 0 then
    -- ZREM first: a move frees what it adds, and a script's first write
    -- decides whether a full Redis lets it run (it lets ZREM through).
    redis.call('ZREM', set, unpack(due))
    for _, member in ipairs(due) do
      redis.call('XADD', stream, '*', 'm', member)
    end
    moved = moved + #due
  end
end
local next = -1
for pair = 0, 1 do
  local first = redis.call('ZRANGE', KEYS[1 + 2 * pair], 0, 0, 'WITHSCORES')
  if first[2] then
    local score = tonumber(first[2])
    if next == -1 or score < next then next = score end
  end
end
return { moved, next, redis.call('HLEN', KEYS[5]) }
