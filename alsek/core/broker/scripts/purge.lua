-- Delete up to `limit` waiting messages of a queue: its ready ones (`ready`) or those waiting
-- for their ready time (`delayed`). Leased (running) messages are left to finish.
-- ARGV: prefix, now, queue, state, limit. Returns {deleted, more (1 when some are left)}.
local q, state, limit = ARGV[3], ARGV[4], tonumber(ARGV[5])
local deleted = 0
local function drop(u)
  unindex(q, u)
  deleted = deleted + redis.call('DEL', msg_key(q, u))
end
local more = 0
if state == 'ready' then
  for _, t in ipairs(redis.call('SMEMBERS', tasks_key(q))) do
    local key = ready_key(q, t)
    while deleted < limit do
      local batch = math.min(limit - deleted, DEL_KEYS_PER_CALL)
      local members = redis.call('ZRANGE', key, 0, batch - 1)
      if #members == 0 then break end
      for _, m in ipairs(members) do drop(uuid_of(m)) end
      redis.call('ZREM', key, unpack(members))  -- entries whose body had expired too
    end
    if redis.call('EXISTS', key) == 1 then more = 1 end
  end
elseif state == 'delayed' then
  local index = delayed_key(q)
  while deleted < limit do
    local batch = math.min(limit - deleted, DEL_KEYS_PER_CALL)
    local members = redis.call('ZRANGE', index, 0, batch - 1)
    if #members == 0 then break end
    for _, u in ipairs(members) do drop(u) end
    redis.call('ZREM', index, unpack(members))
  end
  more = redis.call('EXISTS', index)
else
  error('alsek: purge state must be ready or delayed, got ' .. tostring(state))
end
return {deleted, more}
