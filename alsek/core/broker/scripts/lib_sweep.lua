-- Broker library, read after lib_effects.lua: due messages promoted, expired leases reclaimed.

-- Move messages whose ready time has come into their ready sets.
local function promote(q)
  local index = delayed_key(q)
  local due = redis.call('ZRANGEBYSCORE', index, '-inf', NOW, 'LIMIT', 0, PROMOTE_PER_PASS)
  if #due == 0 then return end
  for _, u in ipairs(due) do
    local f = redis.call('HMGET', msg_key(q, u), 'task', 'prio', 'seq')
    if f[1] then
      make_ready(q, f[1], u, f[2], f[3])
      redis.call('ZREM', task_delayed_key(q, f[1]), u)
    end
  end
  redis.call('ZREM', index, unpack(due))
end

-- Return messages whose lease expired (their worker died or hung) to the ready set,
-- counting one lost attempt each; the consumer that claims them next records it.
local function reclaim(q)
  local leases = leases_key(q)
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', NOW, 'LIMIT', 0, RECLAIM_PER_PASS)
  local count = 0
  for _, u in ipairs(expired) do
    local lock = lock_key(q, u)
    local pttl = redis.call('PTTL', lock)
    if pttl > 0 or pttl == -1 then
      -- Still held (renewed without touching the index): look again when it is due.
      redis.call('ZADD', leases, NOW + (pttl > 0 and pttl or LEASE_RECHECK_MS), u)
    else
      -- Gone, or in its last millisecond (PTTL 0): take it from its owner for good.
      redis.call('DEL', lock)
      redis.call('ZREM', leases, u)
      local key = msg_key(q, u)
      local f = redis.call('HMGET', key, 'task', 'prio', 'seq')
      if f[1] then
        free_slot(q, u)
        redis.call('HINCRBY', key, 'lost', 1)
        redis.call('HSET', key, 'since', NOW)
        redis.call('ZREM', task_leases_key(q, f[1]), u)
        make_ready(q, f[1], u, f[2], f[3])
        count = count + 1
      end
    end
  end
  if count > 0 then signal(q) end
  return count
end
