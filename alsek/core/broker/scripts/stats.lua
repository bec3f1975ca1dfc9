-- Counts of one queue and of each of its tasks, read from the indexes: O(tasks), no body read.
-- ARGV: prefix, now, queue, then task names to count even if the queue never had their
-- messages (those live workers serve there).
-- Returns {paused (1/0), delayed, running, dead, oldest ready age (ms; -1: nothing ready), then
-- per task (sorted): name, ready, delayed, running, dead, served (1/0)}. The oldest ready age
-- is read at the head of each task's ready set: with one priority, the oldest ready message.
local q = ARGV[3]
local names, seen = {}, {}
local function include(t)
  if not seen[t] then seen[t] = true; names[#names + 1] = t end
end
for _, t in ipairs(redis.call('SMEMBERS', tasks_key(q))) do include(t) end
for k = 4, #ARGV do include(ARGV[k]) end
table.sort(names)
local out = {
  redis.call('EXISTS', paused_key(q)),
  redis.call('ZCARD', delayed_key(q)),
  redis.call('ZCARD', leases_key(q)),
  redis.call('ZCOUNT', dlq_index_key(q), NOW, '+inf'),
  -1,
}
local oldest = nil
for _, t in ipairs(names) do
  local ready = ready_key(q, t)
  local head = redis.call('ZRANGE', ready, 0, 0)
  if head[1] then
    local since = tonumber(redis.call('HGET', msg_key(q, uuid_of(head[1])), 'since'))
    if since and (not oldest or since < oldest) then oldest = since end
  end
  out[#out + 1] = t
  out[#out + 1] = redis.call('ZCARD', ready)
  out[#out + 1] = redis.call('ZCARD', task_delayed_key(q, t))
  out[#out + 1] = redis.call('ZCARD', task_leases_key(q, t))
  out[#out + 1] = redis.call('ZCOUNT', task_dlq_key(q, t), NOW, '+inf')
  out[#out + 1] = redis.call('ZCOUNT', served_key(q, t), '(' .. NOW, '+inf') > 0 and 1 or 0
end
if oldest then out[5] = math.max(NOW - oldest, 0) end
return out
