-- Make a delayed message (a delay, or a retry's backoff) ready at once, keeping its priority
-- and place, with the body the caller rewrote (its ready_at now) if the stored one is still
-- the body the caller read. ARGV: prefix, now, queue, uuid, expected data, new data.
-- Replies: OK, GONE (not delayed any more, or its body changed since it was read).
local q, u = ARGV[3], ARGV[4]
local key = msg_key(q, u)
local f = redis.call('HMGET', key, 'task', 'prio', 'seq', 'data')
if not f[1] or f[4] ~= ARGV[5] then return GONE end
if redis.call('ZREM', delayed_key(q), u) == 0 then return GONE end
redis.call('ZREM', task_delayed_key(q, f[1]), u)
redis.call('HSET', key, 'data', ARGV[6], 'since', NOW)
make_ready(q, f[1], u, f[2], f[3])
signal(q)
return OK
