-- Broker library, read after lib_index.lua: task limits at claim time, and their slots.

-- Task limits (concurrency_limit, concurrency_key, rate_limit): a message carries its task's
-- limits in its hash (climit, ckey, rlimit, rwindow; the L effect writes them at submit). The
-- claim asks limit_refusal before it leases a message and take_limits after; every path that
-- ends a lease gives the slot back (give_back_slot). Holders of a concurrency slot: a sorted
-- set per (task, key) of uuids scored by lease deadline; a rate's uses: a sorted set of claims
-- scored by time.
local function running_key(q, t, ckey)
  if ckey == '' then return qbase(q) .. ':limits:' .. t .. ':running' end
  return qbase(q) .. ':limits:' .. t .. ':running:' .. ckey
end
local function rate_key(q, t) return qbase(q) .. ':limits:' .. t .. ':rate' end

-- The holders of a slot set still running: one whose deadline passed keeps its slot while its
-- lease is held (renewed), else loses it (its worker died, or its body expired unfinished; a
-- finished one gave its slot back already).
local function running_count(q, key)
  for _, u in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', NOW, 'LIMIT', 0, RECLAIM_PER_PASS)) do
    local pttl = redis.call('PTTL', lock_key(q, u))
    if pttl > 0 or pttl == -1 then
      redis.call('ZADD', key, NOW + (pttl > 0 and pttl or LEASE_RECHECK_MS), u)
    else
      redis.call('ZREM', key, u)
    end
  end
  return redis.call('ZCARD', key)
end

-- Why a message of task t with these limits may not start now: nil when it may; 'key' when its
-- concurrency key is full (later messages of the task may still start), 'task' when nothing of
-- the task may, with the server time a rate slot frees (nil: when a running one ends).
local function limit_refusal(q, t, climit, ckey, rlimit, rwindow)
  if climit then
    local key = running_key(q, t, ckey)
    if redis.call('ZCARD', key) >= climit and running_count(q, key) >= climit then
      if ckey == '' then return 'task' end
      return 'key'
    end
  end
  if rlimit then
    local key = rate_key(q, t)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', NOW - rwindow)
    if redis.call('ZCARD', key) >= rlimit then
      return 'task', tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2]) + rwindow
    end
  end
  return nil
end

-- Message u starts under delivery `owner`: it holds a concurrency slot until its lease ends,
-- and spends one use of its task's rate.
local function take_limits(q, t, u, owner, climit, ckey, rlimit, rwindow, lease_ttl, life)
  if climit then
    local key = running_key(q, t, ckey)
    redis.call('ZADD', key, NOW + lease_ttl, u)
    extend_ttl(key, math.max(life, lease_ttl))
  end
  if rlimit then
    redis.call('ZADD', rate_key(q, t), NOW, u .. ' ' .. owner)
    redis.call('PEXPIRE', rate_key(q, t), rwindow)
  end
end

-- Message u of task t gives its concurrency slot (of key ckey) back, and an idle consumer is
-- woken if its task has work waiting. Every end of a lease does: ack, fail, retry and revoke
-- through unindex, release and an expired lease's reclaim through free_slot.
local function give_back_slot(q, t, ckey, u)
  if redis.call('ZREM', running_key(q, t, ckey), u) == 1
    and redis.call('EXISTS', ready_key(q, t)) == 1 then
    signal(q)
  end
end

local function free_slot(q, u)
  local f = redis.call('HMGET', msg_key(q, u), 'task', 'climit', 'ckey')
  if f[2] then give_back_slot(q, f[1], f[3] or '', u) end
end

-- The L effect: message u carries its task's limits (0: none of that kind).
local function carry_limits(q, u, climit, ckey, rlimit, rwindow)
  local fields = {}
  if tonumber(climit) > 0 then
    fields = {'climit', climit, 'ckey', ckey}
  end
  if tonumber(rlimit) > 0 then
    fields[#fields + 1] = 'rlimit'; fields[#fields + 1] = rlimit
    fields[#fields + 1] = 'rwindow'; fields[#fields + 1] = rwindow
  end
  if #fields > 0 then redis.call('HSET', msg_key(q, u), unpack(fields)) end
end
