-- Give back the slot of token ARGV[1] in the concurrency limiter KEYS[1].
-- Returns 1 when it was held, 0 when it had expired (or was never taken).
return redis.call('ZREM', KEYS[1], ARGV[1])
