-- Due times for entries of a rate-limited origin parked in Redis because
-- its backlog is beyond what the processes keep in memory: one cursor for
-- the whole cluster, so however unevenly the processes read the backlog,
-- it comes back at the origin's rate, each entry once, after what is
-- already waiting. Redis's clock (TIME), like the rate budget.
-- KEYS[1] the origin's park cursor (ms epoch of the next free slot)
-- ARGV[1] ms per postback at the origin's rate
-- ARGV[2] ms from now before the first may come back (the memory backlog)
-- ARGV[3..] postbacks in each entry to park, in order
-- Returns each entry's due time, ms epoch.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local cursor = tonumber(redis.call('GET', KEYS[1]) or '0')
local earliest = now + tonumber(ARGV[2])
if cursor < earliest then cursor = earliest end
local out = {}
for i = 3, #ARGV do
  out[#out + 1] = math.floor(cursor)
  cursor = cursor + tonumber(ARGV[i]) * interval
end
redis.call('SET', KEYS[1], string.format('%.3f', cursor), 'PX', math.ceil(cursor - now) + 60000)
return out
