-- Takes up to ARGV[3] requests from an origin's cluster-wide rate budget
-- (GCRA: the key holds the theoretical arrival time of the next request,
-- ms epoch). With interval T and tolerance tau, any window of W ms allows
-- at most 1 + (tau + W) / T requests (pace.ts gcraParams). The clock is Redis's own (TIME), so
-- processes on machines with skewed clocks share one budget.
-- KEYS[1] the origin's budget key
-- ARGV[1] T, ms per request   ARGV[2] tau, ms   ARGV[3] requests wanted
-- Returns { granted, wait } where wait is the ms until one more is allowed.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local k = math.floor((now + tau - tat) / interval) + 1
if k > tonumber(ARGV[3]) then k = tonumber(ARGV[3]) end
if k < 0 then k = 0 end
if k > 0 then
  tat = tat + k * interval
  redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
end
local wait = math.ceil(tat - tau - now)
if wait < 0 then wait = 0 end
return { k, wait }
