-- Record a queue in the namespace's registry (read by consumers of "all queues"), and wake them
-- when the queue is new. ARGV: prefix, now, queue, ttl.
local registry = PREFIX .. 'registry:{queues}'
local added = redis.call('SADD', registry, ARGV[3])
extend_ttl(registry, tonumber(ARGV[4]))
if added == 1 then
  local wake = registry .. ':wake'
  if redis.call('EXISTS', wake) == 0 then
    redis.call('LPUSH', wake, '1')
    redis.call('PEXPIRE', wake, 60000)
  end
end
return added
