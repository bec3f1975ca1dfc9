-- Dead-letter the ready messages of tasks that no live worker serves, once they have waited
-- `ttl` ms and nobody served their task for as long (the served index, written by the pools'
-- heartbeats); a task served again keeps its messages. Up to EXPIRE_PER_PASS per task, from
-- the head of its ready set, and as many from its parked set (see parked_key). Each writes the
-- FAILED status `payload` when the templates are given ('' : no status), and counts as failed
-- unrun in the throughput history.
-- ARGV: prefix, now, queue, ttl, dlq_ttl, status key template, channel template, live index
-- template, history template, history length, payload, status ttl.
-- KEYS: the queue's own keys, the throughput hashes, then what the previous call wanted: the
-- tasks and messages met are found in data, and each is handled once its keys are declared
-- (see declared). Returns {count, blocked, n_wanted, wanted keys}: count, how many messages
-- were dead-lettered.
local EXPIRE_PER_PASS = 100
local q, ttl, dlq_ttl = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local s_key, s_channel, s_index, s_history = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local s_length, s_payload, s_ttl = tonumber(ARGV[10]), ARGV[11], tonumber(ARGV[12])
local threshold = NOW - ttl
local count = 0

local function record_failure(t, u)
  if s_key == '' then return end
  local names = {queue = q, task = t, uuid = u}
  write_status(names, s_key, s_channel, s_payload, s_ttl, s_history, s_length)
  if s_index ~= '' then redis.call('ZREM', fill(s_index, names), t .. ':' .. u) end
end

-- The keys dead-lettering message u of task t touches, besides its task's and its limits'.
local function expiry_keys(t, u)
  local names = {msg_key(q, u), dlq_key(q, u)}
  if s_key ~= '' then
    local values = {queue = q, task = t, uuid = u}
    names[#names + 1] = fill(s_key, values)
    if s_index ~= '' then names[#names + 1] = fill(s_index, values) end
    if s_history ~= '' then names[#names + 1] = fill(s_history, values) end
  end
  return names
end

local function task_expiry_keys(t)
  return {served_key(q, t), ready_key(q, t), task_parked_key(q, t), task_delayed_key(q, t),
    task_leases_key(q, t), task_dlq_key(q, t)}
end

-- Dead-letter waiting message m of unserved task t if it waited long enough (its keys, and its
-- limit sets when it has limits, declared).
local function expire(t, m, ready, parked)
  local u = uuid_of(m)
  if not declared(expiry_keys(t, u)) then return end
  local f = redis.call('HMGET', msg_key(q, u), 'data', 'since', 'climit', 'ckey')
  if not f[1] then
    redis.call('ZREM', ready, m)  -- its body expired
    redis.call('ZREM', parked, m)
  elseif (tonumber(f[2]) or 0) <= threshold then
    if f[3] and not declared(limit_keys(q, t, f[4] or '')) then return end
    unindex(q, u)
    redis.call('DEL', msg_key(q, u))
    dead_letter(q, t, u, f[1], 'no worker serves task ' .. t, dlq_ttl)
    record_failure(t, u)
    count_outcome(q, t, dlq_ttl > 0 and 'd' or 'x', '-1')
    count = count + 1
  end
end

for _, t in ipairs(redis.call('SMEMBERS', tasks_key(q))) do
  if declared(task_expiry_keys(t)) then
    local last = redis.call('ZRANGE', served_key(q, t), -1, -1, 'WITHSCORES')
    if not last[2] or tonumber(last[2]) <= threshold then
      local ready, parked = ready_key(q, t), task_parked_key(q, t)
      local waiting = redis.call('ZRANGE', ready, 0, EXPIRE_PER_PASS - 1)
      for _, m in ipairs(redis.call('ZRANGE', parked, 0, EXPIRE_PER_PASS - 1)) do
        waiting[#waiting + 1] = m
      end
      for _, m in ipairs(waiting) do expire(t, m, ready, parked) end
    end
  end
end
return with_wanted(count, {})
