-- The live delivery processes, on Redis's own clock (TIME), so processes
-- on machines whose clocks disagree still count each other as live (a
-- process whose clock ran 15 s behind used to drop out of the count, and
-- cluster-wide limits were divided among fewer processes than ran).
-- KEYS[1] members (sorted set: consumer name -> last heartbeat, ms epoch)
-- ARGV[1] this process's consumer name to record a heartbeat for, or ''
--         to read only
-- ARGV[2] ms a member stays live after its last heartbeat
-- ARGV[3] '1': also remove members silent four times that long
-- Returns the names of the members live now.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
if ARGV[1] ~= '' then redis.call('ZADD', KEYS[1], now, ARGV[1]) end
if ARGV[3] == '1' then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 4 * ttl) end
return redis.call('ZRANGEBYSCORE', KEYS[1], now - ttl, '+inf')
