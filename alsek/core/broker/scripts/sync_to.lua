-- Overwrite a message's stored body, queued first, else its dead letter. With an owner, only
-- the holder of the lease may (the one lease check); without one (an operator) anyone may. The
-- index follows the body: its task and priority are updated, and a ready (or parked: it is
-- claimed again, and parked again if its key is still full) message moves to its new place. ARGV: prefix, now, queue, uuid, owner, task, priority, data.
-- Replies: OK, GONE (neither queued nor dead-lettered), LEASE_LOST.
local q, u, owner, t, prio, data = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local refused = refusal(q, u, owner)
if refused == ALREADY then return LEASE_LOST end
if refused then return refused end
local key = msg_key(q, u)
local f = redis.call('HMGET', key, 'task', 'prio', 'seq', 'ckey')
if f[1] then
  redis.call('HSET', key, 'data', data, 'task', t, 'prio', prio)
  local m = member(f[3], u)
  if redis.call('ZREM', ready_key(q, f[1]), m) + unpark(q, f[1], f[4] or '', m) > 0 then
    make_ready(q, t, u, prio, f[3])
  end
  if t ~= f[1] then
    redis.call('SADD', tasks_key(q), t)
    extend_ttl(tasks_key(q), redis.call('PTTL', key))
  end
  return OK
end
if owner == '' and redis.call('EXISTS', dlq_key(q, u)) == 1 then
  redis.call('HSET', dlq_key(q, u), 'data', data)
  return OK
end
return GONE
