-- A partner's circuit breaker, shared by every delivery process, on
-- Redis's clock (TIME). A breaker that is not closed is a JSON record in
-- the breakers hash; processes poll the version to see changes.
-- KEYS[1] the origin's window (hash: s<bucket>/f<bucket> successes and
--   failures per tenth of the window, c: connection failures in a row)
-- KEYS[2] breakers hash (origin -> JSON)   KEYS[3] control version
-- ARGV[1] op   ARGV[2] origin
-- op 'report' (a process's outcomes since its last report):
--   ARGV[3] ok  ARGV[4] failed  ARGV[5] connection failures or timeouts
--   since the last response (in a row)  ARGV[6] 1 if a response came
--   (the run restarts)  ARGV[7] failure ratio  ARGV[8] window ms
--   ARGV[9] minimum attempts  ARGV[10] failures in a row  ARGV[11] probe ms
--   Returns { 1, reason } when this report opened the breaker, { 2, record }
--   when it was open already (the reporter learns it before its next
--   poll), else { 0, '' }.
-- op 'probe' (claim the one probe of the interval for the whole cluster):
--   ARGV[3] probe interval ms. Returns 1 when claimed (now half-open), else 0.
-- op 'result' (the probe's outcome): ARGV[3] 1 ok / 0 failed, ARGV[4]
--   probe interval ms. Returns 1 closed, 2 still open, 0 nothing to do.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = ARGV[1]
local origin = ARGV[2]
local raw = redis.call('HGET', KEYS[2], origin)

-- HDEL first: when the record exists (a probe claimed, a probe's result)
-- the script's first write frees memory, so a full Redis (maxmemory,
-- noeviction) lets the rest run, as it lets a write follow one in a script;
-- otherwise an open breaker could not be probed until Redis had room, and
-- its held postbacks, which the probe releases, stayed in Redis.
local function save(b)
  redis.call('HDEL', KEYS[2], origin)
  redis.call('HSET', KEYS[2], origin, cjson.encode(b))
  redis.call('INCR', KEYS[3])
end

if op == 'report' then
  if raw then return { 2, raw } end
  local ok, failed, down = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  local ratio, window, minimum, inRow, probe = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
  local width = math.max(100, math.floor(window / 10))
  local bucket = math.floor(now / width)
  if ok > 0 then redis.call('HINCRBY', KEYS[1], 's' .. bucket, ok) end
  if failed > 0 then redis.call('HINCRBY', KEYS[1], 'f' .. bucket, failed) end
  local row
  if ARGV[6] == '1' then
    row = down
    redis.call('HSET', KEYS[1], 'c', row)
  else
    row = redis.call('HINCRBY', KEYS[1], 'c', down)
  end
  redis.call('PEXPIRE', KEYS[1], window * 2)
  local oks, fails = 0, 0
  local fields = redis.call('HGETALL', KEYS[1])
  for i = 1, #fields, 2 do
    local f = fields[i]
    if f ~= 'c' then
      local b = tonumber(string.sub(f, 2))
      if b <= bucket - 10 then
        redis.call('HDEL', KEYS[1], f)
      elseif string.sub(f, 1, 1) == 's' then
        oks = oks + tonumber(fields[i + 1])
      else
        fails = fails + tonumber(fields[i + 1])
      end
    end
  end
  local reason = nil
  if row >= inRow then
    reason = row .. ' connection failures or timeouts in a row'
  elseif oks + fails >= minimum and fails / (oks + fails) >= ratio then
    reason = fails .. ' of ' .. (oks + fails) .. ' attempts failed in ' .. math.floor(window / 1000) .. ' s'
  end
  if reason == nil then return { 0, '' } end
  redis.call('DEL', KEYS[1])
  save({ state = 'open', since = now, probeAt = now + probe, reason = reason })
  return { 1, reason }
end

if not raw then return 0 end
local b = cjson.decode(raw)
if op == 'probe' then
  if now < b.probeAt then return 0 end
  b.state = 'half-open'
  b.probeAt = now + tonumber(ARGV[3])
  save(b)
  return 1
end
-- result
if ARGV[3] == '1' then
  redis.call('HDEL', KEYS[2], origin)
  redis.call('DEL', KEYS[1])
  redis.call('INCR', KEYS[3])
  return 1
end
b.state = 'open'
b.probeAt = now + tonumber(ARGV[4])
save(b)
return 2
