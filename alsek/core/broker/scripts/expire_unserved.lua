-- Dead-letter the ready messages of tasks that no live worker serves, once they have waited
-- `ttl` ms and nobody served their task for as long (the served index, written by the pools'
-- heartbeats); a task served again keeps its messages. Up to EXPIRE_PER_PASS per task, from
-- the head of its ready set, and as many from its parked set (see parked_key). Each writes the FAILED status `payload` when the templates are
-- given ('' : no status), and counts as failed unrun in the throughput history.
-- ARGV: prefix, now, queue, ttl, dlq_ttl, status key template, channel template, live index
-- template, history template, history length, payload, status ttl.
-- Returns how many messages were dead-lettered.
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

for _, t in ipairs(redis.call('SMEMBERS', tasks_key(q))) do
  local last = redis.call('ZRANGE', served_key(q, t), -1, -1, 'WITHSCORES')
  if not last[2] or tonumber(last[2]) <= threshold then
    local ready, parked = ready_key(q, t), task_parked_key(q, t)
    local waiting = redis.call('ZRANGE', ready, 0, EXPIRE_PER_PASS - 1)
    for _, m in ipairs(redis.call('ZRANGE', parked, 0, EXPIRE_PER_PASS - 1)) do
      waiting[#waiting + 1] = m
    end
    for _, m in ipairs(waiting) do
      local u = uuid_of(m)
      local f = redis.call('HMGET', msg_key(q, u), 'data', 'since')
      if not f[1] then
        redis.call('ZREM', ready, m)  -- its body expired
        redis.call('ZREM', parked, m)
      elseif (tonumber(f[2]) or 0) <= threshold then
        unindex(q, u)
        redis.call('DEL', msg_key(q, u))
        dead_letter(q, t, u, f[1], 'no worker serves task ' .. t, dlq_ttl)
        record_failure(t, u)
        count_outcome(q, t, dlq_ttl > 0 and 'd' or 'x', '-1')
        count = count + 1
      end
    end
  end
end
return count
