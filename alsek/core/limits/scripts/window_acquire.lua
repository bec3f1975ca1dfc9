-- Count one use, token ARGV[1], in the sliding-window limiter KEYS[1] (a ZSET: use token ->
-- server time of the use) if fewer than ARGV[2] uses happened in the last ARGV[3] ms.
-- Uses older than the window are dropped first, so the set never holds more than ARGV[2]
-- entries; the key expires one window after the last use. A repeat of the same token (a
-- call re-sent after a lost reply) is not counted twice.
-- Returns 1 when the use is counted, 0 when the window is full.
local token, limit, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', NOW - window)
if redis.call('ZSCORE', KEYS[1], token) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], NOW, token)
redis.call('PEXPIRE', KEYS[1], window)
return 1
