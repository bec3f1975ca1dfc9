-- Broker library, read after lib_finish.lua: status writes and the throughput history.

-- Append value to the history list key, stamped with the server's time, keeping max items.
local function push_history(key, value, max, ttl)
  redis.call('RPUSH', key, NOW .. ' ' .. value)
  redis.call('LTRIM', key, -max, -1)
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
end

-- Fill a status template's <queue>, <task> and <uuid> in one pass: a value is never searched
-- for markers itself, whatever it contains.
local function fill(template, values)
  return (string.gsub(template, '<(%a+)>', values))
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
-- per (outcome, run-time bucket, task): 'outcome|bucket|task' (the reader adds up the queue's
-- total; hashes of earlier versions also hold 'outcome|bucket', which it skips). Outcomes: 's' succeeded, 'r' retried, 'd'
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

-- Count one ended attempt of task t in queue q: two HINCRBY, and a PEXPIREAT when a field is
-- new (it reaches 1: once per hash and per (outcome, bucket, task) in it). The step is the caller's (CALLER_NOW): it declared these
-- hashes (keys.throughput_keys), so hosts' skew only moves a count into a neighbouring step. run_ms: the run's length in ms, '-1' when there was no run,
-- '' when this is no attempt's end (an operator's remove): then nothing is counted.
local function count_outcome(q, t, outcome, run_ms)
  if run_ms == '' or not t or t == '' then return end
  local fields = outcome .. '|' .. run_bucket(run_ms)
  for _, step in ipairs(THROUGHPUT_STEPS) do
    local start = CALLER_NOW - CALLER_NOW % step[2]
    local key = throughput_key(q, step[1], start)
    if redis.call('HINCRBY', key, fields .. '|' .. t, 1) == 1 then
      redis.call('PEXPIREAT', key, start + step[3])
    end
  end
end
