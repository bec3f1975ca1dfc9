-- Give a leased message back untouched (no attempt counted), e.g. at graceful shutdown.
-- ARGV: prefix, now, queue, uuid, owner. Replies: OK, ALREADY, GONE, LEASE_LOST.
local q, u, owner = ARGV[3], ARGV[4], ARGV[5]
local refused = refusal(q, u, owner)
if refused then return refused end
local key = msg_key(q, u)
free_slot(q, u)
redis.call('DEL', lock_key(q, u))
redis.call('ZREM', leases_key(q), u)
local f = redis.call('HMGET', key, 'task', 'prio', 'seq')
if not f[1] then return GONE end
redis.call('HSET', key, 'last_owner', owner, 'since', NOW)
redis.call('ZREM', task_leases_key(q, f[1]), u)
make_ready(q, f[1], u, f[2], f[3])
signal(q)
return OK
