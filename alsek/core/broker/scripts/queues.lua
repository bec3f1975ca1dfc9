-- Read the queue registry. ARGV: prefix, now, idle_ms, max_candidates.
-- Returns {queues, candidates}: every registered queue, and up to max_candidates of those no
-- producer registered in the last idle_ms, which may be left empty (see forget_queue.lua and
-- unregister.lua). A producer registers its queues again at least every idle_ms, so one that
-- registered longer ago has to register again before its next submit.
-- A queue registered without a time (by an older alsek) gets one now.
local registry, seen = registry_key(), registry_seen_key()
local idle, most = tonumber(ARGV[3]), tonumber(ARGV[4])
local queues = redis.call('SMEMBERS', registry)
local untimed = {}
for start = 1, #queues, ZADD_ARGS_PER_CALL do
  local stop = math.min(start + ZADD_ARGS_PER_CALL - 1, #queues)
  local scores = redis.call('ZMSCORE', seen, unpack(queues, start, stop))
  for k = start, stop do
    if not scores[k - start + 1] then
      untimed[#untimed + 1] = NOW; untimed[#untimed + 1] = queues[k]
    end
  end
end
if #untimed > 0 then
  zadd_pairs(seen, untimed)
  local ttl = redis.call('PTTL', registry)
  if ttl > 0 then extend_ttl(seen, ttl) end
end
local candidates = redis.call('ZRANGEBYSCORE', seen, '-inf', NOW - idle, 'LIMIT', 0, most)
return {queues, candidates}
