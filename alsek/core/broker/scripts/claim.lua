-- Claim up to n ready messages across sources (queues, in order), each under a fresh lease.
-- ARGV: prefix, now, n, lease_ttl, owner_base, request_id,
--       status key template, status channel template, status payload, status ttl (0: none),
--       status history template ('' : none), history length,
--       n_tracked (-1: every task) + tracked task names,
--       n_sources + per source: queue, n_tasks + task names. n_tasks > 0: these tasks,
--       drained in order; -k: these k tasks, best priority first; 0: every task of the queue,
--       best priority first. Messages of tasks a source does not name stay queued, and so do
--       the messages of a paused queue (its delayed ones are still promoted, its expired
--       leases reclaimed).
-- KEYS: the queues' own keys and the claim reply's cache, then what the previous reply wanted.
-- Returns {due_in, blocked, n_wanted, wanted keys (a candidate's as one compact string: see
-- want_candidate), then per message: queue, task, uuid, data,
-- lost, owner}; due_in is how long (ms, by the server's clock) until something becomes due, a
-- lease expires or a full key with parked messages is looked at again (0: parked up to
-- PARK_PER_CLAIM or waiting for keys, claim again now), -1 when nothing is pending.
--
-- Peeking ahead (docs/redis-layout.md, "Declared keys"): a message is leased only when the
-- call declared its keys (body, lease, status, limit sets) and its task's; the reply wants the
-- keys of the next candidates of every task served (the head of each ready set, a few more than
-- n), of delayed messages due soon, and of whatever a sweep met undeclared. The caller names
-- them in its next claim; `blocked` tells it this call left work undone for want of keys (it
-- calls again at once when it got nothing). A candidate that another consumer took meanwhile
-- is simply no longer in its ready set.
local n, lease_ttl, owner_base, rid = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6]
local s_key, s_channel, s_payload, s_ttl = ARGV[7], ARGV[8], ARGV[9], tonumber(ARGV[10])
local s_history, s_history_length = ARGV[11], tonumber(ARGV[12])
local i = 13
local tracked = nil
local n_tracked = tonumber(ARGV[i]); i = i + 1
if n_tracked >= 0 then
  tracked = {}
  for _ = 1, n_tracked do tracked[ARGV[i]] = true; i = i + 1 end
end
local sources = {}
local n_sources = tonumber(ARGV[i]); i = i + 1
for _ = 1, n_sources do
  local q, n_tasks = ARGV[i], tonumber(ARGV[i + 1]); i = i + 2
  local tasks = nil
  if n_tasks ~= 0 then
    tasks = {}
    for k = 1, math.abs(n_tasks) do tasks[k] = ARGV[i]; i = i + 1 end
  end
  sources[#sources + 1] = {queue = q, tasks = tasks, ordered = n_tasks > 0}
end

-- A retried call (the reply was lost with the connection) gets the first call's answer. Each
-- consumer claims one request at a time, so only its last reply can be asked for again: one
-- string per consumer (owner), "<request id>\n<reply>", replaced by every claim of that
-- consumer and dropped by an empty one, so no reply outlives the next claim. Two commands a
-- claim: GET here, SET (or DEL, when one was kept) at the end. A repeat writes its cached reply
-- again as it is (confirm_repeat), so that a durable claim's WAIT covers the first.
local cache_key, cache_held = nil, false
if rid ~= '' and #sources > 0 then
  cache_key = qbase(sources[1].queue) .. ':claim:' .. owner_base
  local cached = redis.call('GET', cache_key)
  if cached then
    local tag = rid .. '\n'
    if string.sub(cached, 1, #tag) == tag then
      confirm_repeat('SET', cache_key, cached, 'KEEPTTL')  -- a durable claim's WAIT covers it
      return cjson.decode(string.sub(cached, #tag + 1))
    end
    cache_held = true
  end
end

-- The head of a ready set: its member, its score (a number) and the score as stored; false
-- when the set is empty.
local function head(key)
  local h = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if h[1] then return {h[1], tonumber(h[2]), h[2]} end
  return false
end

-- The heads of a source's ready sets, read once; after a message is taken, only its task's
-- head is read again.
local function read_heads(q, tasks)
  local heads = {}
  for k, t in ipairs(tasks) do heads[k] = head(ready_key(q, t)) end
  return heads
end

-- Messages over their concurrency key's limit are parked (see parked_key): out of the ready
-- set until a slot of their key frees, so a later claim does not meet them again. A claim
-- parks at most this many per task, then asks its caller to claim again at once (due_in 0):
-- its work stays bounded however long a hot key's backlog is.
local PARK_PER_CLAIM = 100

-- Which task the next message comes from: the first with work (ordered), else the best
-- (priority, then submission order) across them. nil when every ready set is empty.
local function pick(heads, ordered)
  local best = nil
  for k, h in ipairs(heads) do
    if h then
      if ordered then return k end
      local b = best and heads[best]
      if not b or h[2] < b[2] or (h[2] == b[2] and h[1] < b[1]) then best = k end
    end
  end
  return best
end

local out = {}
local next_due = -1
local function note_at(at)
  if at and (next_due < 0 or at < next_due) then next_due = at end
end
local function note(key)
  local h = head(key)
  if h then note_at(h[2]) end
end

-- The keys leasing message u of task t touches (its task's own are asked per source).
local function candidate_keys(q, t, u)
  local body = msg_key(q, u)
  local names = {body, 'lock:' .. body}  -- lock_key(q, u), its body's name built once
  if s_key ~= '' and (tracked == nil or tracked[t]) then
    local values = {queue = q, task = t, uuid = u}
    names[3] = fill(s_key, values)
    if s_history ~= '' then names[4] = fill(s_history, values) end
  end
  return names
end

-- Tasks whose messages carried limits in this call: the next candidates' limit keys are peeked;
-- and tasks with messages parked: their peek reaches as far as a claim may park.
local LIMITED, PARKING = {}, {}

-- A candidate is wanted compactly: one string, CANDIDATE then queue, task and uuid joined by
-- it, from which the caller builds candidate_keys (claims.py, `_candidate_keys`): fewer and
-- shorter strings to build and send than its two to four full names.
local CANDIDATE = '\0'

-- Want the keys of message u of task t for the next call: its candidate keys, and the limit
-- sets it names when its body is readable and its task has limits (the next call would
-- otherwise meet them undeclared).
local function want_candidate(q, t, u)
  want(CANDIDATE .. q .. CANDIDATE .. t .. CANDIDATE .. u)
  if LIMITED[t] and DECLARED[msg_key(q, u)] then
    local f = redis.call('HMGET', msg_key(q, u), 'climit', 'ckey', 'rlimit')
    if f[1] or f[3] then
      for _, key in ipairs(limit_keys(q, t, f[2] or '')) do want(key) end
    end
  end
end

-- The keys of task t that a claim touches.
local function task_claim_keys(q, t)
  return {ready_key(q, t), task_leases_key(q, t), task_delayed_key(q, t)}
end

-- How many candidates per task the reply peeks: a few more than n, so that a consumer losing
-- its first candidates to another still finds declared ones behind them.
local PEEK_DEPTH = n + math.max(2, math.min(n, 16))
-- Delayed messages due within this long are peeked too, so their promotion and lease need no
-- extra call.
local DELAYED_LOOKAHEAD_MS = 5000

local function peek_ready(q, t)
  for _, key in ipairs(task_claim_keys(q, t)) do want(key) end
  if not DECLARED[ready_key(q, t)] then return end
  local depth = PEEK_DEPTH + (PARKING[t] and PARK_PER_CLAIM or 0)
  for _, m in ipairs(redis.call('ZRANGE', ready_key(q, t), 0, depth - 1)) do
    want_candidate(q, t, uuid_of(m))
  end
end

local function peek_delayed(q)
  local soon = redis.call('ZRANGEBYSCORE', delayed_key(q), '-inf', NOW + DELAYED_LOOKAHEAD_MS,
    'LIMIT', 0, PEEK_DEPTH)
  for _, u in ipairs(soon) do
    local key = msg_key(q, u)
    local t = DECLARED[key] and redis.call('HGET', key, 'task')
    if t then
      for _, name in ipairs(task_claim_keys(q, t)) do want(name) end
      want_candidate(q, t, u)
    else
      want(key)
    end
  end
end

for _, src in ipairs(sources) do
  promote(src.queue)
  reclaim(src.queue)
  recheck_parked(src.queue)
end

-- Lease one message (ready-set member m, score: its priority); returns its body's PTTL, or nil
-- when the body expired (skipped), or false, why and when (limit_refusal) when its task's
-- limits keep it queued, and no attempt is counted: parked ('key': its key is full), else
-- left as it is. The caller has taken m out of the ready set, or does it unless it is 'task'.
local function lease(q, t, m, score)
  local u = uuid_of(m)
  local names = candidate_keys(q, t, u)
  local key, lock = names[1], names[2]
  if not has_keys(names) then return false, 'undeclared' end
  local f = redis.call('HMGET', key, 'data', 'lost', 'climit', 'ckey', 'rlimit', 'rwindow')
  if not f[1] then return nil end
  local climit, ckey, rlimit, rwindow = tonumber(f[3]), f[4] or '', tonumber(f[5]), tonumber(f[6])
  if climit or rlimit then
    LIMITED[t] = true
    if not declared(limit_keys(q, t, ckey)) then return false, 'undeclared' end
    local why, at = limit_refusal(q, t, climit, ckey, rlimit, rwindow)
    if why == 'key' then
      park(q, t, ckey, m, score)
      PARKING[t] = true
    end
    if why then return false, why, at end
  end
  local owner = owner_base .. ':' .. redis.call('HINCRBY', key, 'deliveries', 1)
  redis.call('SET', lock, owner, 'PX', lease_ttl)
  redis.call('ZADD', leases_key(q), NOW + lease_ttl, u)
  redis.call('ZADD', task_leases_key(q, t), NOW + lease_ttl, u)
  if s_key ~= '' and (tracked == nil or tracked[t]) then
    local names = {queue = q, task = t, uuid = u}
    write_status(names, s_key, s_channel, s_payload, s_ttl, s_history, s_history_length)
  end
  local n_out = #out
  out[n_out + 1] = q; out[n_out + 2] = t; out[n_out + 3] = u
  out[n_out + 4] = f[1]; out[n_out + 5] = tonumber(f[2]) or 0; out[n_out + 6] = owner
  local life = redis.call('PTTL', key)
  if climit or rlimit then
    take_limits(q, t, u, owner, climit, ckey, rlimit, rwindow, lease_ttl, life)
  end
  return life
end

-- The leases index TTL is extended once per queue, to the longest-lived message leased, and
-- each task's mirror once, to its own longest (tasks with nothing leased are left alone).
local claimed = 0
-- Nobody claims from a paused queue (its delayed messages are promoted and its expired leases
-- reclaimed all the same, above).
local active = {}
for _, src in ipairs(sources) do
  if redis.call('EXISTS', paused_key(src.queue)) == 0 then
    active[#active + 1] = src
  else
    src.paused = true
  end
end

-- A source whose tasks' keys the call did not all declare stops the claim there (a later
-- source's messages must not go first): their keys are wanted.
local function tasks_declared(q, tasks)
  local ok = true
  for _, t in ipairs(tasks) do ok = declared(task_claim_keys(q, t)) and ok end
  return ok
end

local halted = false
for _, src in ipairs(active) do
  local q = src.queue
  local tasks = src.tasks or redis.call('SMEMBERS', tasks_key(q))
  src.task_list = tasks
  if not tasks_declared(q, tasks) then halted = true; break end
  local longest, longest_of = 0, {}
  local heads = nil
  local function took(t, pttl)
    if pttl then
      claimed = claimed + 1
      if pttl > longest then longest = pttl end
      if pttl > (longest_of[t] or 0) then longest_of[t] = pttl end
    end
  end
  -- Per task: how many messages this claim parked.
  local parked = {}
  for k = 1, #tasks do parked[k] = 0 end
  while claimed < n do
    if #tasks == 1 then
      -- One task: take the rest of the batch at once (stale entries are dropped and skipped);
      -- a message its limits refuse for the whole task goes back, and so do the ones after it.
      local key = ready_key(q, tasks[1])
      local batch = redis.call('ZPOPMIN', key, n - claimed)
      if #batch == 0 then heads = {false}; break end
      local stop = false
      local put_back = {}
      for k = 1, #batch, 2 do
        local pttl, why, at = false, 'task', nil
        if not stop then pttl, why, at = lease(q, tasks[1], batch[k], batch[k + 1]) end
        if pttl == false and why == 'key' then
          parked[1] = parked[1] + 1
          if parked[1] >= PARK_PER_CLAIM and not stop then stop = true; note_at(NOW) end
        elseif pttl == false then
          put_back[#put_back + 1] = batch[k + 1]
          put_back[#put_back + 1] = batch[k]
          if why == 'undeclared' then halted = true end
          if not stop then stop = true; note_at(at) end
        else
          took(tasks[1], pttl)
        end
      end
      -- The pop may have emptied the set, which the put-backs then created again without a
      -- TTL: it gets the longest life of the messages it holds again (the queue's task set
      -- lives at least as long, for bodies this call may not read).
      if #put_back > 0 then redis.call('ZADD', key, unpack(put_back)) end
      if #put_back > 0 and redis.call('PTTL', key) == -1 then
        local life = 0
        for k = 2, #put_back, 2 do
          local body = msg_key(q, uuid_of(put_back[k]))
          if DECLARED[body] then life = math.max(life, redis.call('PTTL', body)) end
        end
        if life <= 0 then life = redis.call('PTTL', tasks_key(q)) end
        extend_ttl(key, life)
      end
      if stop then heads = {false}; break end
      -- A full batch passes the wake-up on if work is left (below: heads read only then).
    else
      heads = heads or read_heads(q, tasks)
      local k = pick(heads, src.ordered)
      if not k then break end
      local key = ready_key(q, tasks[k])
      local pttl, why, at = lease(q, tasks[k], heads[k][1], heads[k][3])
      if pttl == false and why == 'key' then
        redis.call('ZREM', key, heads[k][1])
        parked[k] = parked[k] + 1
        if parked[k] >= PARK_PER_CLAIM then
          heads[k] = false
          note_at(NOW)
        else
          heads[k] = head(key)
        end
      elseif pttl == false and why == 'undeclared' then
        halted = true
        break
      elseif pttl == false then
        heads[k] = false
        note_at(at)
      else
        redis.call('ZREM', key, heads[k][1])
        took(tasks[k], pttl)
        heads[k] = head(key)
      end
    end
  end
  extend_ttl(leases_key(q), longest)
  for _, t in ipairs(tasks) do
    if longest_of[t] then extend_ttl(task_leases_key(q, t), longest_of[t]) end
  end
  if halted then break end
  if claimed >= n then
    -- Full batch: if work remains, pass the wake-up on to another idle consumer (unless a
    -- token waits already: then no consumer is blocked, and the heads need no reading).
    if wake_wanted(q) and pick(heads or read_heads(q, tasks), src.ordered) then
      push_wake(wake_key(q))
    end
    break
  end
  note(delayed_key(q))
  note(leases_key(q))
  note(rechecks_key(q))
end
-- The next call's candidates, in every source (paused ones: their delayed messages only).
for _, src in ipairs(sources) do
  local q = src.queue
  if src.task_list then
    for _, t in ipairs(src.task_list) do peek_ready(q, t) end
  elseif not src.paused then
    for _, t in ipairs(src.tasks or redis.call('SMEMBERS', tasks_key(q))) do peek_ready(q, t) end
  end
  -- a full claim's caller claims again soon: delayed messages are peeked by a claim that
  -- finds too little (the one before an idle wait)
  if claimed < n then peek_delayed(q) end
end
if BLOCKED then note_at(NOW) end
local due_in = next_due >= 0 and math.max(next_due - NOW, 0) or -1
if cache_key then
  if claimed > 0 then
    -- kept without the wanted keys (a repeat's caller peeks again): a shorter string to encode
    local kept = {due_in, 0, 0}
    for _, item in ipairs(out) do kept[#kept + 1] = item end
    redis.call('SET', cache_key, rid .. '\n' .. cjson.encode(kept), 'PX', lease_ttl)
  elseif cache_held then
    redis.call('DEL', cache_key)
  end
end
return with_wanted(due_in, out)
