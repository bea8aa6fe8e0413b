-- Sets one override of a partner in the control plane, for every process:
-- a pause or a limit, merged into the origin's JSON in the partners hash,
-- and bumps the version processes poll. Two processes pausing the same
-- partner at once (a Retry-After seen by both) keep the later end.
-- KEYS[1] partners hash (origin -> JSON)   KEYS[2] version counter
-- ARGV[1] origin   ARGV[2] field: 'pause' or 'limit'
-- ARGV[3] the JSON value, or '' to remove the field
-- ARGV[4] mode: 'replace'; 'extend' (an automatic pause: it never shortens
--   or replaces an operator's pause, nor one that ends later); 'expire' (remove
--   the field only if it is a pause that ended by ARGV[5])
-- ARGV[5] now, ms epoch
-- Returns 1 when something changed, else 0.
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local c = raw and cjson.decode(raw) or {}
local old = c[ARGV[2]]
if ARGV[4] == 'expire' then
  if old == nil or old['until'] == nil or old['until'] == cjson.null or old['until'] > tonumber(ARGV[5]) then return 0 end
  c[ARGV[2]] = nil
elseif ARGV[3] == '' then
  if old == nil then return 0 end
  c[ARGV[2]] = nil
else
  local v = cjson.decode(ARGV[3])
  if ARGV[4] == 'extend' and old ~= nil then
    if old.by == 'operator' or old['until'] == nil or old['until'] == cjson.null then return 0 end
    if v['until'] ~= nil and v['until'] ~= cjson.null and old['until'] >= v['until'] then return 0 end
  end
  c[ARGV[2]] = v
end
if next(c) == nil then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(c))
end
redis.call('INCR', KEYS[2])
return 1
