-- Record a queue in the namespace's registry (read by consumers of "all queues"), and wake them
-- when the queue is new. ARGV: prefix, now, queue, ttl.
local registry = registry_key()
local added = redis.call('SADD', registry, ARGV[3])
extend_ttl(registry, tonumber(ARGV[4]))
if added == 1 then wake(registry_wake_key()) end
return added
