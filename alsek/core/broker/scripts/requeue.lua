-- Put a dead-lettered message back in its queue with a fresh body (retries reset by the caller).
-- ARGV: prefix, now, queue, task, uuid, priority, ready_at, data, ttl.
-- Replies: OK, ALREADY (this very body is queued: a repeat), EXISTS, GONE (no dead letter).
local q, t, u = ARGV[3], ARGV[4], ARGV[5]
local data = ARGV[8]
local existing = redis.call('HGET', msg_key(q, u), 'data')
if existing then
  if existing == data then return ALREADY end
  return EXISTS
end
if redis.call('EXISTS', dlq_key(q, u)) == 0 then return GONE end
insert_many(q, {{t, u, tonumber(ARGV[6]), tonumber(ARGV[7]), data}}, tonumber(ARGV[9]))
redis.call('DEL', dlq_key(q, u), revoked_key(q, u))
redis.call('ZREM', dlq_index_key(q), u)
signal(q)
return OK
