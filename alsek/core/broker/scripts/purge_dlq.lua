-- Delete the dead letters of a queue that the caller read from its index (it declares their
-- keys; one dead-lettered after that read is left to the next purge), and take them out of
-- the queue's and its tasks' indexes. ARGV: prefix, now, queue, n_tasks, task names (the
-- queue's task set, read with the index), uuids... Returns how many existed.
local q, n_tasks = ARGV[3], tonumber(ARGV[4])
local first = 5 + n_tasks
local deleted = 0
for start = first, #ARGV, DEL_KEYS_PER_CALL do
  local stop = math.min(start + DEL_KEYS_PER_CALL - 1, #ARGV)
  local keys = {}
  for k = start, stop do keys[#keys + 1] = dlq_key(q, ARGV[k]) end
  deleted = deleted + redis.call('DEL', unpack(keys))
  redis.call('ZREM', dlq_index_key(q), unpack(ARGV, start, stop))
  for k = 5, 4 + n_tasks do redis.call('ZREM', task_dlq_key(q, ARGV[k]), unpack(ARGV, start, stop)) end
end
return deleted
