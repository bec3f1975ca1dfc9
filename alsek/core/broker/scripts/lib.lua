-- Shared by every alsek script: it is prepended to each operation's body when loaded.
-- Conventions: ARGV[1] is the namespace prefix ("alsek:"), ARGV[2] the caller's clock in ms.
-- KEYS declares every key the call may touch (the client names them: core/broker/keys.py);
-- KEYS[1] routes it (Redis Cluster). The builders below make the same names from the queue, so
-- a script reads as before, and the tests run each call as an ACL user allowed exactly its
-- KEYS (tests/engine/test_declared_keys.py). All keys of one queue share the hash tag
-- "{queue}", so one script touches one slot. Scripts still touching keys found in data, not
-- declared: see docs/redis-layout.md ("Declared keys").
--
-- Time is Redis's: NOW is read from TIME, so hosts with skewed clocks agree on when a message
-- is due or a lease expires. The caller's clock only translates the times it sends (a ready_at
-- computed on the caller's host) into the server's: see from_caller.
-- Reading TIME before writing needs effects replication: the default since Redis 5 and the
-- only mode since 7, where replicate_commands() is a no-op kept for compatibility.
if redis.replicate_commands then redis.replicate_commands() end
local PREFIX = ARGV[1]
local CALLER_NOW = tonumber(ARGV[2])
local NOW
do
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A time (ms) the caller computed on its own clock, on the server's: the caller meant "this
-- long from now", so the wait is kept and the clocks' difference dropped.
local function from_caller(ms) return NOW + (tonumber(ms) - CALLER_NOW) end

-- Replies of the scripts that change a message (alsek/core/broker/replies.py maps each one).
local OK = 'OK'                  -- done
local ALREADY = 'ALREADY'        -- this very request was already carried out: nothing to do
local GONE = 'GONE'              -- the message does not exist
local LEASE_LOST = 'LEASE_LOST'  -- the lease expired or another worker holds it: nothing changed
local EXISTS = 'EXISTS'          -- another message with this uuid is queued: nothing written
local REVOKED = 'REVOKED'        -- this uuid was revoked: a submit of it writes nothing

-- How long a wake token waits for a consumer, and how soon a lease that has no TTL (it never
-- should) is looked at again by reclaim.
local WAKE_TTL_MS = 60000
local LEASE_RECHECK_MS = 60000
-- How long a submit's request id is remembered, so that the call re-sent after a lost reply
-- changes nothing even once its messages ran: longer than redis-py's retries of one command
-- (10 tries, 5 s socket timeout) and a finishing worker's own repeats (one lease).
local REQUEST_MEMORY_MS = 120000
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
local function requests_key(q) return qbase(q) .. ':requests' end
local function dlq_index_key(q) return qbase(q) .. ':dlq' end
local function dlq_key(q, u) return qbase(q) .. ':dlq:' .. u end
local function revoked_key(q, u) return qbase(q) .. ':revoked:' .. u end
local function paused_key(q) return qbase(q) .. ':paused' end
-- Per-task mirrors of the queue's delayed, leases and dead-letter indexes (same members and
-- scores, but leases keep their first deadline), so that counting a task's messages in each
-- state is one ZCARD; and the task's served index, written by the pools' heartbeats.
local function task_key(q, t, what) return qbase(q) .. ':tasks:' .. t .. ':' .. what end
local function task_delayed_key(q, t) return task_key(q, t, 'delayed') end
local function task_leases_key(q, t) return task_key(q, t, 'leases') end
local function task_dlq_key(q, t) return task_key(q, t, 'dlq') end
local function served_key(q, t) return task_key(q, t, 'served') end
local function uuid_record_key(u) return PREFIX .. 'uuids:' .. u end
local function registry_key() return PREFIX .. 'registry:{queues}' end
local function registry_seen_key() return registry_key() .. ':seen' end
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

-- Put message u back in task t's ready set (its old position: same priority and sequence); the
-- set may have emptied and vanished meanwhile, so it is given the message's lifetime again.
local function make_ready(q, t, u, prio, seq)
  local key = ready_key(q, t)
  redis.call('ZADD', key, prio, member(seq, u))
  extend_ttl(key, redis.call('PTTL', msg_key(q, u)))
end

-- Wake one idle consumer blocked on the list `key`. A token already waiting means no consumer
-- is blocked, so one token is enough.
local function wake(key)
  if redis.call('EXISTS', key) == 0 then
    redis.call('LPUSH', key, '1')
    redis.call('PEXPIRE', key, WAKE_TTL_MS)
  end
end

-- Wake one idle consumer of queue q, unless the queue is paused (no consumer claims from it;
-- resuming it wakes one).
local function signal(q)
  if redis.call('EXISTS', paused_key(q)) == 0 then wake(wake_key(q)) end
end

-- Requests of queue q remembered for REQUEST_MEMORY_MS (a sorted set by expiry, pruned as it
-- is written, so it holds only the requests of the last two minutes).
local function seen_request(q, rid)
  if rid == '' then return false end
  local expiry = redis.call('ZSCORE', requests_key(q), rid)
  return expiry ~= false and tonumber(expiry) > NOW
end

local function remember_request(q, rid)
  if rid == '' then return end
  local key = requests_key(q)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', NOW)
  redis.call('ZADD', key, NOW + REQUEST_MEMORY_MS, rid)
  redis.call('PEXPIRE', key, REQUEST_MEMORY_MS)  -- every entry is forgotten by then
end

-- Note message u of task t as not ready before ready_at (both indexes; see task_key).
local function add_delayed(q, t, u, ready_at, ttl)
  redis.call('ZADD', delayed_key(q), ready_at, u)
  redis.call('ZADD', task_delayed_key(q, t), ready_at, u)
  extend_ttl(delayed_key(q), ttl)
  extend_ttl(task_delayed_key(q, t), ttl)
end

-- Put a message where it belongs: ready set when due, else the ready-time index. The hash's
-- `since` says from when it is ready (the age of the oldest ready message reads it).
local function enqueue(q, t, u, prio, seq, ready_at, ttl)
  redis.call('HSET', msg_key(q, u), 'since', math.max(ready_at, NOW))
  if ready_at <= NOW then
    local key = ready_key(q, t)
    redis.call('ZADD', key, prio, member(seq, u))
    extend_ttl(key, ttl)
  else
    add_delayed(q, t, u, ready_at, ttl)
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
-- ready_at (server time), data}; the per-queue bookkeeping is done once for all of them.
local function insert_many(q, entries, ttl)
  local seq_name = seq_key(q)
  local seq = redis.call('INCRBY', seq_name, #entries) - #entries
  local ready, delayed, tasks = {}, {}, {}
  for _, e in ipairs(entries) do
    local t, u, prio, ready_at = e[1], e[2], e[3], e[4]
    seq = seq + 1
    local key = msg_key(q, u)
    local since = math.max(ready_at, NOW)
    redis.call('HSET', key, 'data', e[5], 'task', t, 'prio', prio, 'seq', seq, 'since', since)
    redis.call('PEXPIRE', key, ttl)
    if not ready[t] then ready[t] = {}; delayed[t] = {}; tasks[#tasks + 1] = t end
    if ready_at <= NOW then
      local pairs = ready[t]
      pairs[#pairs + 1] = prio; pairs[#pairs + 1] = member(seq, u)
    else
      local pairs = delayed[t]
      pairs[#pairs + 1] = ready_at; pairs[#pairs + 1] = u
    end
  end
  for _, t in ipairs(tasks) do
    if #ready[t] > 0 then
      zadd_pairs(ready_key(q, t), ready[t])
      extend_ttl(ready_key(q, t), ttl)
    end
    if #delayed[t] > 0 then
      zadd_pairs(delayed_key(q), delayed[t])
      zadd_pairs(task_delayed_key(q, t), delayed[t])
      extend_ttl(delayed_key(q), ttl)
      extend_ttl(task_delayed_key(q, t), ttl)
    end
  end
  redis.call('SADD', tasks_key(q), unpack(tasks))
  extend_ttl(tasks_key(q), ttl)
  extend_ttl(seq_name, ttl)
end

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

-- Drop every index entry of a message, its concurrency slot included (its body is deleted by
-- the caller); returns its task.
local function unindex(q, u)
  local f = redis.call('HMGET', msg_key(q, u), 'task', 'seq', 'climit', 'ckey')
  if f[1] then
    redis.call('ZREM', ready_key(q, f[1]), member(f[2], u))
    redis.call('ZREM', task_delayed_key(q, f[1]), u)
    redis.call('ZREM', task_leases_key(q, f[1]), u)
    if f[3] then give_back_slot(q, f[1], f[4] or '', u) end
  end
  redis.call('ZREM', delayed_key(q), u)
  redis.call('ZREM', leases_key(q), u)
  return f[1]
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
-- in place of its lease for the rest of the lease's time: a repeat of its own finish (the
-- reply was lost) is then told apart from a message finished by someone else.
local FINISHED_BY = 'finished-by:'

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

-- Message u finishes (ack, fail, revoke): it lets go of the unique key it holds, if any.
local function release_unique(q, u)
  local key = redis.call('HGET', msg_key(q, u), 'unique')
  if key and redis.call('GET', key) == u then redis.call('DEL', key) end
end

-- Remove a message for good (ack, fail), if `owner` may: nil when done, else why not. A
-- repeat of this delivery's own finish is ALREADY; a delivery that gave the message back
-- holds no lease left to finish it with (LEASE_LOST).
local function finish(q, u, owner)
  if owner ~= '' then
    local refused, how = lease_refusal(q, u, owner)
    if refused == ALREADY and how == 'returned' then return LEASE_LOST end
    if refused then return refused end
  end
  unindex(q, u)
  release_unique(q, u)
  redis.call('DEL', msg_key(q, u))
  if owner ~= '' then
    redis.call('SET', lock_key(q, u), FINISHED_BY .. owner, 'KEEPTTL')
  else
    redis.call('DEL', lock_key(q, u))
  end
  return nil
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

-- Side effects written in the same round trip, only when the operation succeeds. ARGV[i] holds
-- their count, then each is an opcode and its arguments:
--   S key value ttl nx   SET (ttl: >0 PX, 0 none, <0 KEEPTTL; nx '1': keep an existing value)
--   P channel payload    PUBLISH
--   Z key score member ttl   ZADD, and the key lives at least ttl ms (0: no TTL change)
--   R key member         ZREM
--   D key                DEL
--   H key value max ttl  RPUSH '<now> <value>' (a status history), keep the last max items,
--                        PEXPIRE ttl (0: none)
--   K key ttl            keep key ttl more ms (PEXPIRE), for good (-1: PERSIST), or not (0: DEL)
--   G key                a member of the group counted at key succeeded (group_member_done)
--   U key uuid queue ttl mode status_tpl index_tpl   the submitted message holds a unique key
--                        (hold_unique; unique_yield reads it before the message is written)
--   L queue uuid climit ckey rlimit rwindow   the message carries its task's limits
--                        (carry_limits; 0: none of that kind)
-- With apply false they are only stepped over. Returns the index after the last one.
local EFFECT_ARGS = {S = 4, P = 2, Z = 4, R = 2, D = 1, H = 4, K = 2, G = 1, U = 7, L = 6}

-- Append value to the history list key, stamped with the server's time, keeping max items.
local function push_history(key, value, max, ttl)
  redis.call('RPUSH', key, NOW .. ' ' .. value)
  redis.call('LTRIM', key, -max, -1)
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
end
local function effects_at(i, apply)
  local count = tonumber(ARGV[i]); i = i + 1
  for _ = 1, count do
    local op = ARGV[i]
    local width = EFFECT_ARGS[op]
    if not width then error('alsek: unknown effect opcode ' .. tostring(op)) end
    if not apply then
      -- stepped over
    elseif op == 'S' then
      local ttl = tonumber(ARGV[i + 3])
      local args = {'SET', ARGV[i + 1], ARGV[i + 2]}
      if ttl > 0 then
        args[#args + 1] = 'PX'; args[#args + 1] = ttl
      elseif ttl < 0 then
        args[#args + 1] = 'KEEPTTL'
      end
      if ARGV[i + 4] == '1' then args[#args + 1] = 'NX' end
      redis.call(unpack(args))
    elseif op == 'P' then
      redis.call(PUBLISH, ARGV[i + 1], ARGV[i + 2])
    elseif op == 'Z' then
      redis.call('ZADD', ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
      extend_ttl(ARGV[i + 1], tonumber(ARGV[i + 4]))
    elseif op == 'R' then
      redis.call('ZREM', ARGV[i + 1], ARGV[i + 2])
    elseif op == 'H' then
      push_history(ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]))
    elseif op == 'K' then
      local ttl = tonumber(ARGV[i + 2])
      if ttl > 0 then
        redis.call('PEXPIRE', ARGV[i + 1], ttl)
      elseif ttl < 0 then
        redis.call('PERSIST', ARGV[i + 1])
      else
        redis.call('DEL', ARGV[i + 1])
      end
    elseif op == 'G' then
      group_member_done(ARGV[i + 1])
    elseif op == 'U' then
      hold_unique(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4]), ARGV[i + 5])
    elseif op == 'L' then
      carry_limits(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6])
    else
      redis.call('DEL', ARGV[i + 1])
    end
    i = i + 1 + width
  end
  return i
end

local function apply_effects(i) return effects_at(i, true) end

-- Fill a status template's <queue>, <task> and <uuid> in one pass: a value is never searched
-- for markers itself, whatever it contains.
local function fill(template, values)
  return (string.gsub(template, '<(%a+)>', values))
end

-- Keys held by messages of this very call (a submit of several messages with one key): the
-- first holds it, the others yield to it.
local UNIQUE_IN_CALL = {}

-- Before a message whose effects start at ARGV[i] is written: the uuid of the message it yields
-- to when its U effect's key is held ('simple', 'throttle'), else nil (write it, or it has no
-- key). 'debounce' never yields: a holder still waiting (not leased) is removed first, with
-- its status (the templates' key and live-index entry); a running one keeps running.
local function unique_yield(i)
  local count = tonumber(ARGV[i]); i = i + 1
  local at
  for _ = 1, count do
    if ARGV[i] == 'U' then at = i; break end
    i = i + 1 + EFFECT_ARGS[ARGV[i]]
  end
  if not at then return nil end
  local key, u, q, mode = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 5]
  local held = UNIQUE_IN_CALL[key] or redis.call('GET', key)
  if held and mode == 'simple' and not UNIQUE_IN_CALL[key]
    and redis.call('EXISTS', msg_key(q, held)) == 0 then
    held = false  -- its holder ended without letting go (expired, purged): the key is free
  end
  if held and (mode ~= 'debounce' or UNIQUE_IN_CALL[key]) then return held end
  UNIQUE_IN_CALL[key] = u
  if not held or redis.call('EXISTS', lock_key(q, held)) == 1 then return nil end
  local t = unindex(q, held)
  if t then
    redis.call('DEL', msg_key(q, held))
    local names = {queue = q, task = t, uuid = held}
    if ARGV[at + 6] ~= '' then redis.call('DEL', fill(ARGV[at + 6], names)) end
    if ARGV[at + 7] ~= '' then redis.call('ZREM', fill(ARGV[at + 7], names), t .. ':' .. held) end
  end
  return nil
end

-- Write a status from templates filled with `names` (a claim's RUNNING, an unserved message's
-- FAILED): SET (PX ttl when > 0), PUBLISH, and the history when its template is given.
local function write_status(names, key_tpl, channel_tpl, payload, ttl, history_tpl, history_max)
  if ttl > 0 then
    redis.call('SET', fill(key_tpl, names), payload, 'PX', ttl)
  else
    redis.call('SET', fill(key_tpl, names), payload)
  end
  redis.call(PUBLISH, fill(channel_tpl, names), payload)
  if history_tpl ~= '' then push_history(fill(history_tpl, names), payload, history_max, ttl) end
end

-- Throughput history (Admin.throughput), counted by the scripts that end an attempt: per
-- queue, one hash per minute (kept 48 h) and one per hour (kept 14 days), each with a field
-- per (outcome, run-time bucket, task) and one per (outcome, bucket) for the queue's total:
-- 'outcome|bucket|task' and 'outcome|bucket'. Outcomes: 's' succeeded, 'r' retried, 'd'
-- failed into the dead-letter queue, 'x' failed with no dead letter kept. Buckets: the index
-- of the first RUN_MS_BUCKETS bound the run time is at most, #RUN_MS_BUCKETS beyond the last,
-- '-' for no run (a message failed unrun). The same bounds are RUN_MS_BUCKETS in keys.py.
local RUN_MS_BUCKETS = {10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000}
local THROUGHPUT_STEPS = {{'minute', 60000, 48 * 3600000}, {'hour', 3600000, 14 * 24 * 3600000}}
local function throughput_key(q, step, start)
  return qbase(q) .. ':throughput:' .. step .. ':' .. start
end

local function run_bucket(run_ms)
  local ms = tonumber(run_ms)
  if ms < 0 then return '-' end
  for i, bound in ipairs(RUN_MS_BUCKETS) do
    if ms <= bound then return i - 1 end
  end
  return #RUN_MS_BUCKETS
end

-- Count one ended attempt of task t in queue q: four HINCRBY, and a PEXPIREAT when a hash is
-- new (its first field reaches 1). The step is the caller's (CALLER_NOW): it declared these
-- hashes (keys.throughput_keys), so hosts' skew only moves a count into a neighbouring step. run_ms: the run's length in ms, '-1' when there was no run,
-- '' when this is no attempt's end (an operator's remove): then nothing is counted.
local function count_outcome(q, t, outcome, run_ms)
  if run_ms == '' or not t or t == '' then return end
  local fields = outcome .. '|' .. run_bucket(run_ms)
  for _, step in ipairs(THROUGHPUT_STEPS) do
    local start = CALLER_NOW - CALLER_NOW % step[2]
    local key = throughput_key(q, step[1], start)
    if redis.call('HINCRBY', key, fields, 1) == 1 then
      redis.call('PEXPIREAT', key, start + step[3])
    end
    redis.call('HINCRBY', key, fields .. '|' .. t, 1)
  end
end

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
