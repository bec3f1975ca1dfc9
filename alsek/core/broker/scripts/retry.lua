-- Give a message back for another attempt, with its new body (retries + 1, ready_at).
-- ARGV: prefix, now, queue, uuid, owner, data, ready_at, effects.
local q, u, owner, data, ready_at = ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local key = msg_key(q, u)
if not holds_lease(q, u, owner) then
  if owner ~= '' and redis.call('HGET', key, 'last_owner') == owner then return 'ALREADY' end
  if redis.call('EXISTS', key) == 0 then return 'NOT_FOUND' end
  return 'LEASE_LOST'
end
local f = redis.call('HMGET', key, 'task', 'prio', 'seq')
if not f[1] then return 'NOT_FOUND' end
unindex(q, u)
redis.call('DEL', lock_key(q, u))
local seq = redis.call('INCR', seq_key(q))
redis.call('HSET', key, 'data', data, 'seq', seq, 'lost', 0, 'last_owner', owner)
enqueue(q, f[1], u, tonumber(f[2]), seq, ready_at, redis.call('PTTL', key))
signal(q)
apply_effects(8)
return 'OK'
