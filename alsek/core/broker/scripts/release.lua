-- Give a leased message back untouched (no attempt counted), e.g. at graceful shutdown.
-- ARGV: prefix, now, queue, uuid, owner.
local q, u, owner = ARGV[3], ARGV[4], ARGV[5]
local key = msg_key(q, u)
if not holds_lease(q, u, owner) then
  if redis.call('HGET', key, 'last_owner') == owner then return 'ALREADY' end
  return 'LEASE_LOST'
end
redis.call('DEL', lock_key(q, u))
redis.call('ZREM', leases_key(q), u)
local f = redis.call('HMGET', key, 'task', 'prio', 'seq')
if not f[1] then return 'NOT_FOUND' end
redis.call('HSET', key, 'last_owner', owner)
redis.call('ZADD', ready_key(q, f[1]), f[2], member(f[3], u))
signal(q)
return 'OK'
