-- Adds one request's postback entries to a shard, all or none.
-- KEYS[1] template key (content-addressed)   KEYS[2] stream
-- ARGV[1] encoded template, or '' when the caller believes it is stored
-- ARGV[2] template time-to-live in ms (refreshed on every call)
-- ARGV[3..] encoded entries, in order
-- Returns the number of entries added, or -1 when ARGV[1] is '' and the
-- template is not stored (the caller sends again with the template).
if ARGV[1] == '' then
  if redis.call('PEXPIRE', KEYS[1], ARGV[2]) == 0 then
    return -1
  end
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
for i = 3, #ARGV do
  redis.call('XADD', KEYS[2], '*', 'm', ARGV[i])
end
return #ARGV - 2
