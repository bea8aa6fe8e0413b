-- Adds the postbacks of several requests to one shard in one call (ingest
-- gathers the requests of an event-loop turn: one round trip, one script
-- run, whatever the traffic). Each request lands whole or not at all.
-- KEYS[1] stream (first attempts)   KEYS[2] delayed set   KEYS[3] postback count
-- KEYS[4] statistics bucket of this second
-- KEYS[5..] template keys (content-addressed), one per template used
-- ARGV[1] template time-to-live in ms (refreshed on every use)
-- ARGV[2] now, ms epoch
-- ARGV[3] queue limit in postbacks (0: none)
-- ARGV[4] statistics retention in seconds
-- ARGV[5] number of templates T, then T encoded templates ('' when the
--         caller believes the template is stored)
-- then per request: template number (1..T), due time (ms epoch; later than
--   now: to the delayed set), postbacks, entries E, then E encoded entries
-- Returns one number per request: entries added; -1 when its template was
-- sent as '' and is not stored (the caller sends it again with the
-- template); -2 when the shard holds the limit (nothing written for it).
local ttl = ARGV[1]
local now = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local nt = tonumber(ARGV[5])
local stored = {}
for t = 1, nt do
  local blob = ARGV[5 + t]
  if blob == '' then
    stored[t] = redis.call('PEXPIRE', KEYS[4 + t], ttl) == 1
  else
    redis.call('SET', KEYS[4 + t], blob, 'PX', ttl)
    stored[t] = true
  end
end
local held = tonumber(redis.call('GET', KEYS[3]) or '0')
local out = {}
local accepted = 0
local requests = 0
local i = 6 + nt
while i <= #ARGV do
  local t = tonumber(ARGV[i])
  local due = tonumber(ARGV[i + 1])
  local n = tonumber(ARGV[i + 2])
  local e = tonumber(ARGV[i + 3])
  i = i + 4
  if not stored[t] then
    out[#out + 1] = -1
  elseif limit > 0 and held + n > limit then
    out[#out + 1] = -2
  else
    if due > now then
      for j = 0, e - 1 do
        redis.call('ZADD', KEYS[2], due, ARGV[i + j])
      end
    else
      for j = 0, e - 1 do
        redis.call('XADD', KEYS[1], '*', 'm', ARGV[i + j])
      end
    end
    held = held + n
    accepted = accepted + n
    requests = requests + 1
    out[#out + 1] = e
  end
  i = i + e
end
if accepted > 0 then
  redis.call('INCRBY', KEYS[3], accepted)
  redis.call('HINCRBY', KEYS[4], 'accepted', accepted)
  redis.call('HINCRBY', KEYS[4], 'requests', requests)
  redis.call('EXPIRE', KEYS[4], ARGV[4])
end
return out
