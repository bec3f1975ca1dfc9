-- Delete the bookkeeping of a queue that holds nothing: no message ready, delayed or leased,
-- no dead letter, and not paused (a paused queue stays listed). ARGV: prefix, now, queue.
-- Returns 1 when the queue was empty (its task set and counter are gone), 0 otherwise.
local q = ARGV[3]
local busy = redis.call('EXISTS', delayed_key(q), leases_key(q), dlq_index_key(q), paused_key(q))
if busy > 0 then return 0 end
for _, t in ipairs(redis.call('SMEMBERS', tasks_key(q))) do
  if redis.call('EXISTS', ready_key(q, t)) == 1 then return 0 end
end
redis.call('DEL', tasks_key(q), seq_key(q))
return 1
