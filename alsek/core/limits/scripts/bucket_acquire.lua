-- Count one use in the fixed-window (bucket) limiter KEYS[1], a HASH holding the current
-- bucket's number ("bucket": server time // ARGV[2] ms) and its uses ("uses"), if fewer than
-- ARGV[1] uses were counted in the current bucket. The key expires when its bucket ends.
-- Returns 1 when the use is counted, 0 when the bucket is full.
local limit, size = tonumber(ARGV[1]), tonumber(ARGV[2])
local bucket = math.floor(NOW / size)
local state = redis.call('HMGET', KEYS[1], 'bucket', 'uses')
local uses = 0
if tonumber(state[1]) == bucket then uses = tonumber(state[2]) or 0 end
if uses >= limit then return 0 end
redis.call('HSET', KEYS[1], 'bucket', bucket, 'uses', uses + 1)
redis.call('PEXPIRE', KEYS[1], (bucket + 1) * size - NOW)
return 1
