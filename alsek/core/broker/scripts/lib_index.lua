-- Broker library, read after lib_keys.lua: putting messages in their indexes, and wake-ups.

-- Put message u back in task t's ready set (its old position: same priority and sequence); the
-- set may have emptied and vanished meanwhile, so it is given the message's lifetime again.
local function make_ready(q, t, u, prio, seq)
  local key = ready_key(q, t)
  redis.call('ZADD', key, prio, member(seq, u))
  extend_ttl(key, redis.call('PTTL', msg_key(q, u)))
end

-- Leave a wake token on the list `key`: it unblocks one idle consumer (or the next to block).
local function push_wake(key)
  redis.call('LPUSH', key, '1')
  redis.call('PEXPIRE', key, WAKE_TTL_MS)
end

-- Wake one idle consumer blocked on the list `key`. A token already waiting means no consumer
-- is blocked, so one token is enough.
local function wake(key)
  if redis.call('EXISTS', key) == 0 then push_wake(key) end
end

-- Wake one idle consumer of queue q, unless the queue is paused (no consumer claims from it;
-- resuming it wakes one). One EXISTS asks both questions (paused? a token already waiting?),
-- and a queue is signalled once per call: a second signal would find the same answer.
-- wake_wanted asks, and counts as the call's signal of q (the claim asks before it looks
-- whether work is left: nothing to look at when a token waits already).
local SIGNALLED = {}
local function wake_wanted(q)
  if SIGNALLED[q] then return false end
  SIGNALLED[q] = true
  return redis.call('EXISTS', paused_key(q), wake_key(q)) == 0
end

local function signal(q)
  if wake_wanted(q) then push_wake(wake_key(q)) end
end

-- A repeat (a request re-sent after its reply was lost, or after its replicas fell short)
-- changes nothing, yet writes one value as it is, through this: a WAIT after the repeat
-- (durable writes, core/steps/replication.py) then covers the first attempt's writes too. On
-- Redis 7 and Valkey, WAIT covers only what its own connection last wrote, and a repeat may
-- come on another pooled connection than the first; a repeat writing nothing would be
-- acknowledged before the replicas had the first.
local function confirm_repeat(...) redis.call(...) end

-- Requests of queue q remembered for REQUEST_MEMORY_MS: a sorted set by expiry, whose key lives
-- as long as its newest entry, pruned every REQUEST_PRUNE_EVERY messages (prune_requests).
-- A request is remembered as it is first seen, by one ZADD NX (a new id, the common case,
-- costs no lookup); a call that then writes nothing forgets it again (forget_request), so
-- that the same call sent again (naming the keys it was asked for) is not taken for a repeat.
local REQUEST_PRUNE_EVERY = 64
local function seen_request(q, rid)
  if rid == '' then return false end
  local key, expiry = requests_key(q), NOW + REQUEST_MEMORY_MS
  if redis.call('ZADD', key, 'NX', expiry, rid) == 0 then
    if tonumber(redis.call('ZSCORE', key, rid)) > NOW then return true end
    redis.call('ZADD', key, expiry, rid)  -- seen long ago, not yet pruned: new again
  end
  redis.call('PEXPIRE', key, REQUEST_MEMORY_MS)  -- every entry is forgotten by then
  return false
end

local function forget_request(q, rid)
  if rid ~= '' then redis.call('ZREM', requests_key(q), rid) end
end

-- Drop the requests forgotten by now, when the call's messages took the sequence of queue q
-- across a multiple of REQUEST_PRUNE_EVERY (`last`: the last sequence taken, `count`: how
-- many), or when it wrote none: the set holds the last two minutes' requests and at most
-- that many older ones.
local function prune_requests(q, last, count)
  local every = REQUEST_PRUNE_EVERY
  if count == 0 or math.floor(last / every) ~= math.floor((last - count) / every) then
    redis.call('ZREMRANGEBYSCORE', requests_key(q), '-inf', NOW)
  end
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
-- Returns the last sequence number taken.
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
  return seq
end
