-- Counts of one queue and of each of the tasks the caller names, read from the indexes:
-- O(tasks), no body read. ARGV: prefix, now, queue, then task names: the queue's task set as
-- the caller read it just before (it declares their keys; a task added since is counted by
-- the next read) and those live workers serve there, sorted.
-- Returns {paused (1/0), delayed, running, dead, the server's time (ms), then per task: name,
-- ready (parked ones included: see parked_key), delayed, running, dead, served (1/0), the uuid
-- of its first ready or parked message ('' : none)}. The caller reads the heads' `since` to
-- tell the oldest ready age: with one priority, the oldest ready message.
local q = ARGV[3]
local out = {
  redis.call('EXISTS', paused_key(q)),
  redis.call('ZCARD', delayed_key(q)),
  redis.call('ZCARD', leases_key(q)),
  redis.call('ZCOUNT', dlq_index_key(q), NOW, '+inf'),
  NOW,
}
for k = 4, #ARGV do
  local t = ARGV[k]
  local ready, parked = ready_key(q, t), task_parked_key(q, t)
  local head = redis.call('ZRANGE', ready, 0, 0, 'WITHSCORES')
  local first = redis.call('ZRANGE', parked, 0, 0, 'WITHSCORES')
  if first[1] and (not head[1] or tonumber(first[2]) < tonumber(head[2])
    or (tonumber(first[2]) == tonumber(head[2]) and first[1] < head[1])) then
    head = first
  end
  out[#out + 1] = t
  out[#out + 1] = redis.call('ZCARD', ready) + redis.call('ZCARD', parked)
  out[#out + 1] = redis.call('ZCARD', task_delayed_key(q, t))
  out[#out + 1] = redis.call('ZCARD', task_leases_key(q, t))
  out[#out + 1] = redis.call('ZCOUNT', task_dlq_key(q, t), NOW, '+inf')
  out[#out + 1] = redis.call('ZCOUNT', served_key(q, t), '(' .. NOW, '+inf') > 0 and 1 or 0
  out[#out + 1] = head[1] and uuid_of(head[1]) or ''
end
return out
