-- Adds counts to a per-second statistics bucket and keeps it for the
-- retention window.
-- KEYS[1] bucket (a hash)
-- ARGV[1] retention in seconds
-- ARGV[2..] field, increment, field, increment, ...
-- Returns the number of fields incremented.
for i = 2, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return (#ARGV - 1) / 2
