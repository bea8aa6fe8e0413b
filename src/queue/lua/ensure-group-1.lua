-- Creates the delivery consumer group of a stream, from id 0 (entries
-- written before any delivery process count), making the stream if need
-- be; a group that exists is left as it is.
-- It must work when Redis is full (maxmemory, noeviction), or a delivery
-- process started then could never drain it: Redis checks memory only at
-- a script's first write, and refuses XGROUP CREATE there. So the first
-- write is an XTRIM to a length no stream reaches, which changes nothing
-- and is never refused; the group (a few bytes) is created after it.
-- KEYS[1] stream
-- ARGV[1] consumer group
-- Returns 1 when the group was created, 0 when it existed.
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', '9223372036854775807')
local created = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
if type(created) == 'table' and created.err then
  if string.find(created.err, 'BUSYGROUP', 1, true) then return 0 end
  return redis.error_reply(created.err)
end
return 1
