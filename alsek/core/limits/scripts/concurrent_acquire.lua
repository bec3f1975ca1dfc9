-- Take one of ARGV[2] slots of the concurrency limiter KEYS[1] (a ZSET: holder token -> the
-- server time its slot expires) for token ARGV[1], for ARGV[3] ms.
-- Holders past their expiry (they died without releasing) are dropped first, so their slots
-- free up. A repeat of the same token (a call re-sent after a lost reply) finds its slot.
-- Returns 1 when the slot is held, 0 when every slot is taken.
local token, limit, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', NOW)
if redis.call('ZSCORE', KEYS[1], token) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], NOW + ttl, token)
-- Every holder expires within ttl from now, so the key outlives them all and no longer.
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
