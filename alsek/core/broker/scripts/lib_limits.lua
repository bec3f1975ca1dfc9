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

-- Parked messages: a message the claim refused because its concurrency key is full leaves its
-- task's ready set for the parked set of its (task, key), same score and member, so no claim
-- meets it again while the key is full (a hot key's backlog costs a claim nothing). It is
-- given back to the ready set when a slot of its key frees: give_back_parked, called by every
-- end of a holder's lease (give_back_slot), by a claim that finds holders gone (limit_refusal),
-- and by the recheck index: per queue, each (task, key) with parked messages, scored by when
-- to look again (its earliest holder's deadline), swept with promote and reclaim, so a holder
-- that vanished with no script ending its lease (its body expired) frees its slot all the
-- same. A task's parked messages are also in one set per task (what counts and lists them as
-- queued, and what purge and forget_queue read).
local function parked_key(q, t, ckey) return qbase(q) .. ':limits:' .. t .. ':parked:' .. ckey end
local function task_parked_key(q, t) return task_key(q, t, 'parked') end
local function rechecks_key(q) return qbase(q) .. ':limits:rechecks' end
-- Parked messages given back (or found expired) per (task, key) per pass.
local GIVE_BACK_PER_PASS = 100

-- The holders of a slot set still running: one whose deadline passed keeps its slot while its
-- lease is held (renewed), else loses it (its worker died, or its body expired unfinished; a
-- finished one gave its slot back already). A holder whose lease key the call did not declare
-- keeps its slot for now (wanted; `unsure` is then true).
local function running_count(q, key)
  local unsure = false
  for _, u in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', NOW, 'LIMIT', 0, RECLAIM_PER_PASS)) do
    local lock = lock_key(q, u)
    if not declared({lock}) then
      unsure = true
    else
      local pttl = redis.call('PTTL', lock)
      if pttl > 0 or pttl == -1 then
        redis.call('ZADD', key, NOW + (pttl > 0 and pttl or LEASE_RECHECK_MS), u)
      else
        redis.call('ZREM', key, u)
      end
    end
  end
  return redis.call('ZCARD', key), unsure
end

-- Note when to look again at (t, ckey): its earliest holder's deadline (now when it has room
-- left, `soon`), or never once nothing of it is parked.
local function schedule_recheck(q, t, ckey, soon)
  local index, entry = rechecks_key(q), t .. ':' .. ckey
  local parked = parked_key(q, t, ckey)
  if redis.call('EXISTS', parked) == 0 then
    redis.call('ZREM', index, entry)
    return
  end
  local at = NOW
  if not soon then
    local first = redis.call('ZRANGE', running_key(q, t, ckey), 0, 0, 'WITHSCORES')
    if first[2] then at = math.max(tonumber(first[2]), NOW) end
  end
  redis.call('ZADD', index, at, entry)
  extend_ttl(index, redis.call('PTTL', parked))
end

-- Park message member m (score: its priority) of task t, refused because key ckey is full.
-- The caller has taken it out of the ready set.
local function park(q, t, ckey, m, score)
  local life = redis.call('PTTL', msg_key(q, uuid_of(m)))
  for _, key in ipairs({parked_key(q, t, ckey), task_parked_key(q, t)}) do
    redis.call('ZADD', key, score, m)
    extend_ttl(key, life)
  end
  -- the key is full: look again by its earliest holder's deadline, unless already noted
  local due = redis.call('ZSCORE', rechecks_key(q), t .. ':' .. ckey)
  if not due or tonumber(due) <= NOW then schedule_recheck(q, t, ckey, false) end
end

-- Take member m of task t (key ckey) out of the parked sets; 1 when it was parked.
local function unpark(q, t, ckey, m)
  redis.call('ZREM', task_parked_key(q, t), m)
  if ckey == '' or redis.call('ZREM', parked_key(q, t, ckey), m) == 0 then return 0 end
  if redis.call('EXISTS', parked_key(q, t, ckey)) == 0 then
    redis.call('ZREM', rechecks_key(q), t .. ':' .. ckey)
  end
  return 1
end

-- The keys giving back the parked messages of (t, ckey) touches, besides their bodies.
local function parked_keys(q, t, ckey)
  return {parked_key(q, t, ckey), task_parked_key(q, t), running_key(q, t, ckey), ready_key(q, t),
    rechecks_key(q)}
end

-- Give the best parked messages of (t, ckey) back to t's ready set, as many as the key has
-- free slots (less `reserved`, taken by the message a claim is about to lease), dropping
-- those whose body expired; wake a consumer when any went back. Keys the call did not
-- declare (a parked body, a holder's lease) are wanted, and the key is looked at again at
-- once (schedule_recheck): a claim's sweep, which names what it wants, finishes the work.
local function give_back_parked(q, t, ckey, reserved)
  if not declared(parked_keys(q, t, ckey)) then return end
  local parked = parked_key(q, t, ckey)
  local ready = ready_key(q, t)
  local count, unsure = running_count(q, running_key(q, t, ckey))
  count = count + reserved
  local moved, full = 0, false
  for _ = 1, GIVE_BACK_PER_PASS do
    local head = redis.call('ZRANGE', parked, 0, 0, 'WITHSCORES')
    if not head[1] then break end
    local body = msg_key(q, uuid_of(head[1]))
    if not declared({body}) then
      unsure = true
      break
    end
    local climit = tonumber(redis.call('HGET', body, 'climit'))
    if climit and count + moved >= climit then full = true; break end
    unpark(q, t, ckey, head[1])
    if climit then
      redis.call('ZADD', ready, head[2], head[1])
      extend_ttl(ready, redis.call('PTTL', body))
      moved = moved + 1
    end
  end
  if moved > 0 then signal(q) end
  if unsure then signal(q) end
  schedule_recheck(q, t, ckey, unsure or not full)
end

-- Why a message of task t with these limits may not start now: nil when it may; 'key' when its
-- concurrency key is full (later messages of the task may still start), 'task' when nothing of
-- the task may, with the server time a rate slot frees (nil: when a running one ends);
-- 'undeclared' when a holder's lease the call did not declare decides it (see declared).
-- Holders found gone free their slots for parked messages of the key too, less the one this
-- message takes. The holders counted of a full key are remembered for the rest of the call
-- (only other calls free slots), so the next messages of a hot key are refused at no cost.
local HOLDERS_IN_CALL = {}
local function limit_refusal(q, t, climit, ckey, rlimit, rwindow)
  if climit then
    local key = running_key(q, t, ckey)
    local known = HOLDERS_IN_CALL[key]
    if known and known >= climit then return ckey == '' and 'task' or 'key' end
    if redis.call('ZCARD', key) >= climit then
      local count, unsure = running_count(q, key)
      if count >= climit and unsure then return 'undeclared' end
      if count >= climit then
        HOLDERS_IN_CALL[key] = count
        return ckey == '' and 'task' or 'key'
      end
      if ckey ~= '' and redis.call('EXISTS', parked_key(q, t, ckey)) == 1 then
        give_back_parked(q, t, ckey, 1)
      end
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

-- The keys the limits of message u of task t (concurrency key ckey) touch when it starts or
-- its lease ends.
local function limit_keys(q, t, ckey)
  local names = {running_key(q, t, ckey), rate_key(q, t), task_parked_key(q, t), ready_key(q, t),
    rechecks_key(q)}
  if ckey ~= '' then names[#names + 1] = parked_key(q, t, ckey) end
  return names
end

-- Message u of task t gives its concurrency slot (of key ckey) back: parked messages of the
-- key go back to the ready set, and an idle consumer is woken if its task has work waiting.
-- Every end of a lease does: ack, fail, retry and revoke through unindex, release and an
-- expired lease's reclaim through free_slot.
-- A slot whose keys the call did not declare stays taken until its holder is found gone
-- (running_count).
local function give_back_slot(q, t, ckey, u)
  if not declared(limit_keys(q, t, ckey)) then return end
  if redis.call('ZREM', running_key(q, t, ckey), u) == 0 then return end
  if ckey ~= '' and redis.call('EXISTS', parked_key(q, t, ckey)) == 1 then
    give_back_parked(q, t, ckey, 0)
  end
  if redis.call('EXISTS', ready_key(q, t)) == 1 then signal(q) end
end

-- Look again at the full keys with parked messages whose time came (see parked_key).
local function recheck_parked(q)
  local index = rechecks_key(q)
  for _, entry in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', NOW, 'LIMIT', 0, RECLAIM_PER_PASS)) do
    local sep = string.find(entry, ':', 1, true)
    give_back_parked(q, string.sub(entry, 1, sep - 1), string.sub(entry, sep + 1), 0)
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
