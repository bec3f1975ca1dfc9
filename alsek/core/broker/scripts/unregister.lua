-- Drop from the registry the queues found empty, unless a producer registered one since it
-- was looked at; a queue found busy is looked at again idle_ms later.
-- ARGV: prefix, now, idle_ms, n, n x (queue, empty: 1 or 0). Returns the queues dropped.
local registry, seen = registry_key(), registry_seen_key()
local idle, n = tonumber(ARGV[3]), tonumber(ARGV[4])
local dropped = {}
for k = 0, n - 1 do
  local q, empty = ARGV[5 + k * 2], ARGV[6 + k * 2]
  local at = redis.call('ZSCORE', seen, q)
  if at and tonumber(at) <= NOW - idle then
    if empty == '1' then
      redis.call('SREM', registry, q)
      redis.call('ZREM', seen, q)
      dropped[#dropped + 1] = q
    else
      redis.call('ZADD', seen, NOW, q)
    end
  end
end
return dropped
