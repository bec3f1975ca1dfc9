-- Broker library, read after lib_limits.lua: leases, the ends of a message (finish, dead letters),
-- unique keys and groups.

-- Drop every index entry of a message, its parked entry and concurrency slot included (its
-- body is deleted by the caller); returns its task and the unique key it holds (for
-- release_held). `leased`: the caller checked that its lease is held, so the message is in no
-- ready or delayed index (a claim took it out, and every way back there ends the lease
-- first): those are not asked.
local function unindex(q, u, leased)
  local f = redis.call('HMGET', msg_key(q, u), 'task', 'seq', 'climit', 'ckey', 'unique')
  if f[1] then
    if not leased then
      redis.call('ZREM', ready_key(q, f[1]), member(f[2], u))
      redis.call('ZREM', task_delayed_key(q, f[1]), u)
    end
    redis.call('ZREM', task_leases_key(q, f[1]), u)
    if f[3] then
      unpark(q, f[1], f[4] or '', member(f[2], u))
      give_back_slot(q, f[1], f[4] or '', u)
    end
  end
  if not leased then redis.call('ZREM', delayed_key(q), u) end
  redis.call('ZREM', leases_key(q), u)
  return f[1], f[5]
end

-- Keep a dead-letter copy of message u of task t (false: unknown) for dlq_ttl ms, indexed by
-- expiry so stale entries are pruned.
local function dead_letter(q, t, u, data, reason, dlq_ttl)
  if dlq_ttl <= 0 then return end
  local key = dlq_key(q, u)
  redis.call('DEL', key)
  redis.call('HSET', key, 'data', data, 'reason', reason, 'failed_at', NOW, 'task', t or '')
  redis.call('PEXPIRE', key, dlq_ttl)
  local indexes = {dlq_index_key(q)}
  if t then indexes[2] = task_dlq_key(q, t) end
  for _, index in ipairs(indexes) do
    redis.call('ZADD', index, NOW + dlq_ttl, u)
    redis.call('ZREMRANGEBYSCORE', index, '-inf', NOW)
    extend_ttl(index, dlq_ttl)
  end
end

-- Take dead letter u out of its indexes (it is requeued or purged); returns its task.
local function undead(q, u)
  local t = redis.call('HGET', dlq_key(q, u), 'task')
  if t and t ~= '' then redis.call('ZREM', task_dlq_key(q, t), u) end
  redis.call('ZREM', dlq_index_key(q), u)
  return t
end

-- A delivery that finished its message (ack, fail) leaves this mark, followed by its owner id,
-- in place of its lease for the rest of the lease's time, and at least FINISH_MEMORY_MS: a
-- repeat of its own finish (the reply was lost, or its replicas fell short) is then told apart
-- from a message finished by someone else for as long as a pool sends it again (the outcome
-- plans, core/future/outcome.py, wait out an outage for 30 s, even past a short lease).
local FINISHED_BY = 'finished-by:'
local FINISH_MEMORY_MS = 40000

-- The lease check, the only one: nil when `owner` holds message u's lease, else why not, and
-- for ALREADY how this very delivery already let go of it ('returned': retry or release, the
-- message is queued again; 'finished': ack or fail, it is gone). GONE: there is no message
-- (finished by someone else, revoked, expired); LEASE_LOST: the lease expired or is another
-- worker's.
local function lease_refusal(q, u, owner)
  local lock = redis.call('GET', lock_key(q, u))
  if owner ~= '' and lock == owner then return nil end
  if owner ~= '' and lock == FINISHED_BY .. owner then return ALREADY, 'finished' end
  local key = msg_key(q, u)
  if owner ~= '' and redis.call('HGET', key, 'last_owner') == owner then
    return ALREADY, 'returned'
  end
  if redis.call('EXISTS', key) == 0 then return GONE end
  return LEASE_LOST
end

-- Why `owner` may not give message u back (retry, release) or rewrite it: nil when it may. A
-- producer or operator ('') acts without a lease. A repeat of its own retry or release is
-- ALREADY; a delivery that finished the message has nothing left to give back (GONE).
local function refusal(q, u, owner)
  if owner == '' then return nil end
  local refused, how = lease_refusal(q, u, owner)
  if refused == ALREADY and how == 'finished' then return GONE end
  if refused == ALREADY then confirm_repeat('HSET', msg_key(q, u), 'last_owner', owner) end
  return refused
end

-- Unique jobs (generate(unique_key=...)): message u of queue q holds `key` (a full key in q's
-- slot, whose value is the holder's uuid): for ttl ms in mode 'throttle' (released by time
-- alone), else until it finishes (ttl, or the message's own lifetime, bounds it).
local function hold_unique(key, u, q, ttl, mode)
  local msg = msg_key(q, u)
  local life = ttl > 0 and ttl or redis.call('PTTL', msg)
  if life > 0 then
    redis.call('SET', key, u, 'PX', life)
  else
    redis.call('SET', key, u)
  end
  if mode ~= 'throttle' then redis.call('HSET', msg, 'unique', key) end
end

-- Message u finishes (ack, fail, revoke): it lets go of the unique key it holds, if any
-- (release_held: the key already read, by unindex).
local function release_held(key, u)
  if key and redis.call('GET', key) == u then redis.call('DEL', key) end
end

local function release_unique(q, u)
  release_held(redis.call('HGET', msg_key(q, u), 'unique'), u)
end

-- Remove a message for good (ack, fail), if `owner` may: nil when done, else why not. A
-- repeat of this delivery's own finish is ALREADY; a delivery that gave the message back
-- holds no lease left to finish it with (LEASE_LOST). A producer or operator ('') finishes a
-- message that is there: one already gone (finished, revoked, expired) is GONE, nothing applied.
-- Done, it returns nil and the message's task.
local function finish(q, u, owner)
  if owner == '' then
    if redis.call('EXISTS', msg_key(q, u)) == 0 then return GONE end
  else
    local refused, how = lease_refusal(q, u, owner)
    if refused == ALREADY and how == 'returned' then return LEASE_LOST end
    if refused == ALREADY then
      confirm_repeat('SET', lock_key(q, u), FINISHED_BY .. owner, 'KEEPTTL')
    end
    if refused then return refused end
  end
  local t, unique = unindex(q, u, owner ~= '')
  release_held(unique, u)
  redis.call('DEL', msg_key(q, u))
  if owner ~= '' then
    local left = redis.call('PTTL', lock_key(q, u))
    redis.call('SET', lock_key(q, u), FINISHED_BY .. owner, 'PX', math.max(left, FINISH_MEMORY_MS))
  else
    redis.call('DEL', lock_key(q, u))
  end
  return nil, t
end

-- A member of the group counted at `key` succeeded: count it down. The ack that brings the
-- count to 0 submits the group's completion callback (the hash key..':callback': queue, task,
-- uuid, prio, data, ttl, record_ttl, and its limits when it has some: climit, ckey, rlimit,
-- rwindow), once: acks are never applied twice, and a group whose
-- record expired counts nothing.
local function group_member_done(key)
  if redis.call('EXISTS', key) == 0 then return end
  if redis.call('DECR', key) ~= 0 then return end
  local callback = key .. ':callback'
  local f = redis.call('HMGET', callback, 'queue', 'task', 'uuid', 'prio', 'data', 'ttl',
    'record_ttl', 'climit', 'ckey', 'rlimit', 'rwindow')
  redis.call('DEL', callback)
  if not f[1] then return end
  local q, t, u = f[1], f[2], f[3]
  if redis.call('EXISTS', msg_key(q, u)) == 1 or redis.call('EXISTS', revoked_key(q, u)) == 1 then
    return
  end
  insert_many(q, {{t, u, tonumber(f[4]), NOW, f[5]}}, tonumber(f[6]))
  if f[8] then carry_limits(q, u, f[8], f[9], f[10], f[11]) end
  if tonumber(f[7]) > 0 then
    redis.call('SET', uuid_record_key(u), q .. '\31' .. t .. '\31', 'PX', tonumber(f[7]))
  end
  signal(q)
end
