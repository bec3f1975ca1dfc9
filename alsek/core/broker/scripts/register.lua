-- Record a queue in the namespace's registry (read by consumers of "all queues"), with the
-- time of this registration (see queues.lua), and wake them when the queue is new.
-- ARGV: prefix, now, queue, ttl.
local registry, seen = registry_key(), registry_seen_key()
local added = redis.call('SADD', registry, ARGV[3])
redis.call('ZADD', seen, NOW, ARGV[3])
extend_ttl(registry, tonumber(ARGV[4]))
extend_ttl(seen, tonumber(ARGV[4]))
if added == 1 then wake(registry_wake_key()) end
return added
