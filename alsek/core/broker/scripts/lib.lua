-- Shared by every alsek script: it is prepended to each operation's body when loaded.
-- Conventions: ARGV[1] is the namespace prefix ("alsek:"), ARGV[2] the caller's clock in ms.
-- KEYS[1] only routes the call (Redis Cluster); every key is built here from the queue name,
-- and all keys of one queue share the hash tag "{queue}", so one script touches one slot.
local PREFIX = ARGV[1]
local NOW = tonumber(ARGV[2])

-- Replies of the scripts that change a message (alsek/core/broker/replies.py maps each one).
local OK = 'OK'                  -- done
local ALREADY = 'ALREADY'        -- this delivery already gave the message back: nothing to do
local GONE = 'GONE'              -- the message does not exist
local LEASE_LOST = 'LEASE_LOST'  -- the lease expired or another worker holds it: nothing changed
local EXISTS = 'EXISTS'          -- another message with this uuid is queued: nothing written

-- How long a wake token waits for a consumer, and how soon a lease that has no TTL (it never
-- should) is looked at again by reclaim.
local WAKE_TTL_MS = 60000
local LEASE_RECHECK_MS = 60000
-- Items per Redis call or per pass, to keep each call (and each script run) short.
local ZADD_ARGS_PER_CALL = 1000  -- ZADD arguments (score, member pairs: 500 pairs)
local PROMOTE_PER_PASS = 1000    -- delayed messages made ready per pass
local RECLAIM_PER_PASS = 100     -- expired leases returned per pass
local DEL_KEYS_PER_CALL = 500    -- keys per DEL

local function qbase(q) return PREFIX .. 'queues:{' .. q .. '}' end
local function msg_key(q, u) return qbase(q) .. ':messages:' .. u end
local function lock_key(q, u) return 'lock:' .. msg_key(q, u) end
local function ready_key(q, t) return qbase(q) .. ':tasks:' .. t .. ':ready' end
local function tasks_key(q) return qbase(q) .. ':tasks' end
local function delayed_key(q) return qbase(q) .. ':delayed' end
local function leases_key(q) return qbase(q) .. ':leases' end
local function wake_key(q) return qbase(q) .. ':wake' end
local function seq_key(q) return qbase(q) .. ':seq' end
local function dlq_index_key(q) return qbase(q) .. ':dlq' end
local function dlq_key(q, u) return qbase(q) .. ':dlq:' .. u end
local function revoked_key(q, u) return qbase(q) .. ':revoked:' .. u end
local function registry_key() return PREFIX .. 'registry:{queues}' end
local function registry_wake_key() return registry_key() .. ':wake' end

-- Ready-set members sort by (priority score, submission sequence): FIFO within a priority.
-- A member is the sequence, zero-padded to SEQ_DIGITS, then ':' and the uuid.
local SEQ_DIGITS = 16
local function member(seq, u)
  return string.format('%0' .. SEQ_DIGITS .. 'd', tonumber(seq)) .. ':' .. u
end
local function uuid_of(m) return string.sub(m, SEQ_DIGITS + 2) end

-- Index keys live at least as long as the messages they point to, and never shorter.
local function extend_ttl(key, ttl)
  if not ttl or ttl <= 0 then return end
  local current = redis.call('PTTL', key)
  if current ~= -2 and current < ttl then redis.call('PEXPIRE', key, ttl) end
end

-- Wake one idle consumer blocked on the list `key`. A token already waiting means no consumer
-- is blocked, so one token is enough.
local function wake(key)
  if redis.call('EXISTS', key) == 0 then
    redis.call('LPUSH', key, '1')
    redis.call('PEXPIRE', key, WAKE_TTL_MS)
  end
end

-- Wake one idle consumer of queue q.
local function signal(q) wake(wake_key(q)) end

-- Put a message where it belongs: ready set when due, else the ready-time index.
local function enqueue(q, t, u, prio, seq, ready_at, ttl)
  if ready_at <= NOW then
    local key = ready_key(q, t)
    redis.call('ZADD', key, prio, member(seq, u))
    extend_ttl(key, ttl)
  else
    redis.call('ZADD', delayed_key(q), ready_at, u)
    extend_ttl(delayed_key(q), ttl)
  end
end

-- ZADD many (score, member) pairs, a few hundred per call.
local function zadd_pairs(key, pairs)
  for start = 1, #pairs, ZADD_ARGS_PER_CALL do
    local stop = math.min(start + ZADD_ARGS_PER_CALL - 1, #pairs)
    redis.call('ZADD', key, unpack(pairs, start, stop))
  end
end

-- Write new messages of queue q and index them. Each entry is {task, uuid, priority,
-- ready_at, data}; the per-queue bookkeeping is done once for all of them.
local function insert_many(q, entries, ttl)
  local seq_name = seq_key(q)
  local seq = redis.call('INCRBY', seq_name, #entries) - #entries
  local ready, delayed, tasks = {}, {}, {}
  for _, e in ipairs(entries) do
    local t, u, prio, ready_at = e[1], e[2], e[3], e[4]
    seq = seq + 1
    local key = msg_key(q, u)
    redis.call('HSET', key, 'data', e[5], 'task', t, 'prio', prio, 'seq', seq)
    redis.call('PEXPIRE', key, ttl)
    if ready_at <= NOW then
      local pairs = ready[t]
      if not pairs then pairs = {}; ready[t] = pairs; tasks[#tasks + 1] = t end
      pairs[#pairs + 1] = prio; pairs[#pairs + 1] = member(seq, u)
    else
      if not ready[t] then ready[t] = {}; tasks[#tasks + 1] = t end
      delayed[#delayed + 1] = ready_at; delayed[#delayed + 1] = u
    end
  end
  for _, t in ipairs(tasks) do
    if #ready[t] > 0 then
      zadd_pairs(ready_key(q, t), ready[t])
      extend_ttl(ready_key(q, t), ttl)
    end
  end
  if #delayed > 0 then
    zadd_pairs(delayed_key(q), delayed)
    extend_ttl(delayed_key(q), ttl)
  end
  redis.call('SADD', tasks_key(q), unpack(tasks))
  extend_ttl(tasks_key(q), ttl)
  extend_ttl(seq_name, ttl)
end

-- Drop every index entry of a message (its body is deleted by the caller).
local function unindex(q, u)
  local f = redis.call('HMGET', msg_key(q, u), 'task', 'seq')
  if f[1] then redis.call('ZREM', ready_key(q, f[1]), member(f[2], u)) end
  redis.call('ZREM', delayed_key(q), u)
  redis.call('ZREM', leases_key(q), u)
end

-- Keep a dead-letter copy for dlq_ttl ms, indexed by expiry so stale entries are pruned.
local function dead_letter(q, u, data, reason, dlq_ttl)
  if dlq_ttl <= 0 then return end
  local key = dlq_key(q, u)
  redis.call('DEL', key)
  redis.call('HSET', key, 'data', data, 'reason', reason, 'failed_at', NOW)
  redis.call('PEXPIRE', key, dlq_ttl)
  local index = dlq_index_key(q)
  redis.call('ZADD', index, NOW + dlq_ttl, u)
  redis.call('ZREMRANGEBYSCORE', index, '-inf', NOW)
  extend_ttl(index, dlq_ttl)
end

-- The lease check, the only one: nil when `owner` holds message u's lease, else the reply
-- saying why not. ALREADY: this delivery gave the message back (retry, release), so this is a
-- repeat; GONE: there is no message (finished, revoked, expired), e.g. a repeat of our own ack
-- after a dropped connection; LEASE_LOST: the lease expired or is another worker's.
local function lease_refusal(q, u, owner)
  if owner ~= '' and redis.call('GET', lock_key(q, u)) == owner then return nil end
  local key = msg_key(q, u)
  if owner ~= '' and redis.call('HGET', key, 'last_owner') == owner then return ALREADY end
  if redis.call('EXISTS', key) == 0 then return GONE end
  return LEASE_LOST
end

-- Why `owner` may not change message u (nil: it may). A producer or operator ('') acts
-- without a lease.
local function refusal(q, u, owner)
  if owner == '' then return nil end
  return lease_refusal(q, u, owner)
end

-- Remove a message for good (ack, fail), if `owner` may: nil when done, else why not. A
-- delivery that gave the message back (ALREADY) holds no lease left to finish it with.
local function finish(q, u, owner)
  local refused = refusal(q, u, owner)
  if refused == ALREADY then return LEASE_LOST end
  if refused then return refused end
  unindex(q, u)
  redis.call('DEL', msg_key(q, u), lock_key(q, u))
  return nil
end

-- Side effects written in the same round trip, only when the operation succeeds. ARGV[i] holds
-- their count, then each is an opcode and its arguments:
--   S key value ttl nx   SET (ttl: >0 PX, 0 none, <0 KEEPTTL; nx '1': keep an existing value)
--   P channel payload    PUBLISH
--   Z key score member ttl   ZADD, and the key lives at least ttl ms (0: no TTL change)
--   R key member         ZREM
local function apply_effects(i)
  local count = tonumber(ARGV[i]); i = i + 1
  for _ = 1, count do
    local op = ARGV[i]
    if op == 'S' then
      local ttl = tonumber(ARGV[i + 3])
      local args = {'SET', ARGV[i + 1], ARGV[i + 2]}
      if ttl > 0 then
        args[#args + 1] = 'PX'; args[#args + 1] = ttl
      elseif ttl < 0 then
        args[#args + 1] = 'KEEPTTL'
      end
      if ARGV[i + 4] == '1' then args[#args + 1] = 'NX' end
      redis.call(unpack(args))
      i = i + 5
    elseif op == 'P' then
      redis.call(PUBLISH, ARGV[i + 1], ARGV[i + 2])
      i = i + 3
    elseif op == 'Z' then
      redis.call('ZADD', ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
      extend_ttl(ARGV[i + 1], tonumber(ARGV[i + 4]))
      i = i + 5
    elseif op == 'R' then
      redis.call('ZREM', ARGV[i + 1], ARGV[i + 2])
      i = i + 3
    else
      error('alsek: unknown effect opcode ' .. tostring(op))
    end
  end
end

-- Move messages whose ready time has come into their ready sets.
local function promote(q)
  local index = delayed_key(q)
  local due = redis.call('ZRANGEBYSCORE', index, '-inf', NOW, 'LIMIT', 0, PROMOTE_PER_PASS)
  if #due == 0 then return end
  for _, u in ipairs(due) do
    local key = msg_key(q, u)
    local f = redis.call('HMGET', key, 'task', 'prio', 'seq')
    if f[1] then
      local ready = ready_key(q, f[1])
      redis.call('ZADD', ready, f[2], member(f[3], u))
      extend_ttl(ready, redis.call('PTTL', key))
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
        redis.call('HINCRBY', key, 'lost', 1)
        redis.call('ZADD', ready_key(q, f[1]), f[2], member(f[3], u))
        count = count + 1
      end
    end
  end
  if count > 0 then signal(q) end
  return count
end
