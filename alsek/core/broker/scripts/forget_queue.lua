-- Delete the bookkeeping of a queue that holds nothing: no message ready (or parked), delayed
-- or leased, no dead letter, and not paused (a paused queue stays listed). ARGV: prefix, now,
-- queue, then the task names the caller read from the queue's task set (it declares their
-- ready and parked sets).
-- Returns 1 when the queue was empty (its task set and counter are gone), 0 otherwise: also
-- when the task set names a task the caller did not (a submit came in between).
local q = ARGV[3]
local busy = redis.call('EXISTS', delayed_key(q), leases_key(q), dlq_index_key(q), paused_key(q))
if busy > 0 then return 0 end
local named = {}
for k = 4, #ARGV do named[ARGV[k]] = true end
for _, t in ipairs(redis.call('SMEMBERS', tasks_key(q))) do
  if not named[t] then return 0 end
end
for k = 4, #ARGV do
  if redis.call('EXISTS', ready_key(q, ARGV[k]), task_parked_key(q, ARGV[k])) > 0 then return 0 end
end
redis.call('DEL', tasks_key(q), seq_key(q))
return 1
