-- Deletes a shard's whole dead-letter stream and returns how many letters
-- it held: counted and deleted at once, so letters arriving meanwhile are
-- neither. A script and not MULTI: a full Redis (maxmemory, noeviction)
-- refuses every command queued in a MULTI, and purging dead letters is
-- what an operator does to free a full Redis. XLEN reads and DEL frees,
-- so a full Redis runs this script.
-- KEYS[1] dead-letter stream
-- Returns the number of dead letters deleted.
local n = redis.call('XLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
