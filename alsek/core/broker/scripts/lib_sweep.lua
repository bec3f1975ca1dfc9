-- Broker library, read after lib_effects.lua: due messages promoted, expired leases reclaimed.
-- The messages met here are found in data: each is handled only when the call declared its
-- keys, else its keys are wanted (see declared) and it waits for the next call.

-- Move messages whose ready time has come into their ready sets.
local function promote(q)
  local index = delayed_key(q)
  local due = redis.call('ZRANGEBYSCORE', index, '-inf', NOW, 'LIMIT', 0, PROMOTE_PER_PASS)
  if #due == 0 then return end
  local done = {}
  for _, u in ipairs(due) do
    local key = msg_key(q, u)
    if declared({key}) then
      local f = redis.call('HMGET', key, 'task', 'prio', 'seq')
      if not f[1] then
        done[#done + 1] = u
      elseif declared({ready_key(q, f[1]), task_delayed_key(q, f[1])}) then
        make_ready(q, f[1], u, f[2], f[3])
        redis.call('ZREM', task_delayed_key(q, f[1]), u)
        done[#done + 1] = u
      end
    end
  end
  if #done > 0 then redis.call('ZREM', index, unpack(done)) end
end

-- Whether the call declared what returning an expired message of task t touches.
local function reclaim_declared(q, t, climit, ckey)
  local ok = declared({task_leases_key(q, t), ready_key(q, t)})
  if climit then ok = declared(limit_keys(q, t, ckey)) and ok end
  return ok
end

-- Return messages whose lease expired (their worker died or hung) to the ready set,
-- counting one lost attempt each; the consumer that claims them next records it.
local function reclaim(q)
  local leases = leases_key(q)
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', NOW, 'LIMIT', 0, RECLAIM_PER_PASS)
  local count = 0
  for _, u in ipairs(expired) do
    local lock, key = lock_key(q, u), msg_key(q, u)
    local f = declared({lock, key}) and redis.call('HMGET', key, 'task', 'prio', 'seq', 'climit', 'ckey')
    local t = f and f[1]
    if f and (not t or reclaim_declared(q, t, f[4], f[5] or '')) then
      local pttl = redis.call('PTTL', lock)
      if pttl > 0 or pttl == -1 then
        -- Still held (renewed without touching the index): look again when it is due.
        redis.call('ZADD', leases, NOW + (pttl > 0 and pttl or LEASE_RECHECK_MS), u)
      else
        -- Gone, or in its last millisecond (PTTL 0): take it from its owner for good.
        redis.call('DEL', lock)
        redis.call('ZREM', leases, u)
        if t then
          free_slot(q, u)
          redis.call('HINCRBY', key, 'lost', 1)
          redis.call('HSET', key, 'since', NOW)
          redis.call('ZREM', task_leases_key(q, t), u)
          make_ready(q, t, u, f[2], f[3])
          count = count + 1
        end
      end
    end
  end
  if count > 0 then signal(q) end
  return count
end
