-- Record a queue in the namespace's registry (read by consumers of "all queues"), and wake them
-- when the queue is new. ARGV: prefix, now, queue, ttl.
local registry = PREFIX .. 'queues'
local added = redis.call('SADD', registry, ARGV[3])
extend_ttl(registry, tonumber(ARGV[4]))
if added == 1 then
  local wake = PREFIX .. 'queues:wake'
  redis.call('LPUSH', wake, '1')
  redis.call('LTRIM', wake, 0, 0)
  redis.call('PEXPIRE', wake, 60000)
end
return added
