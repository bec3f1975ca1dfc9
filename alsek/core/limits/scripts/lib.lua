-- Shared by every limiter script: the server's clock. Each limiter keeps its state under one
-- hash tag ("{key}"), so a script touches one Redis Cluster slot.
-- Reading TIME before writing needs effects replication: the default since Redis 5 and the
-- only mode since 7, where replicate_commands() is a no-op kept for compatibility.
if redis.replicate_commands then redis.replicate_commands() end
local NOW
do
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
