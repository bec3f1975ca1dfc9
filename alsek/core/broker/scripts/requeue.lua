-- Put a dead-lettered message back in its queue with a fresh body (retries reset and the
-- task's current backoff, by the caller), and apply the effects (SUBMITTED status, failure
-- record cleared). ARGV: prefix, now, queue, task, uuid, priority, ready_at (caller's clock),
-- data, ttl, effects.
-- Replies: OK, ALREADY (this very body is queued: a repeat), EXISTS, GONE (no dead letter).
local q, t, u = ARGV[3], ARGV[4], ARGV[5]
local data = ARGV[8]
local existing = redis.call('HGET', msg_key(q, u), 'data')
if existing then
  if existing == data then
    confirm_repeat('HSET', msg_key(q, u), 'data', data)
    return ALREADY
  end
  return EXISTS
end
if redis.call('EXISTS', dlq_key(q, u)) == 0 then return GONE end
local entry = {t, u, tonumber(ARGV[6]), from_caller(ARGV[7]), data}
insert_many(q, {entry}, tonumber(ARGV[9]))
undead(q, u)
redis.call('DEL', dlq_key(q, u), revoked_key(q, u))
signal(q)
apply_effects(10)
return OK
