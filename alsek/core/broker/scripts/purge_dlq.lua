-- Delete every dead-letter entry of a queue. ARGV: prefix, now, queue. Returns how many existed.
local q = ARGV[3]
local index = dlq_index_key(q)
local members = redis.call('ZRANGE', index, 0, -1)
local deleted = 0
for start = 1, #members, DEL_KEYS_PER_CALL do
  local keys = {}
  for k = start, math.min(start + DEL_KEYS_PER_CALL - 1, #members) do
    keys[#keys + 1] = dlq_key(q, members[k])
  end
  deleted = deleted + redis.call('DEL', unpack(keys))
end
redis.call('DEL', index)
for _, t in ipairs(redis.call('SMEMBERS', tasks_key(q))) do
  redis.call('DEL', task_dlq_key(q, t))
end
return deleted
