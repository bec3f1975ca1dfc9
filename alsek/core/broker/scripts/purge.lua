-- Delete waiting messages of a queue that the caller read just before (it declares their keys):
-- its ready ones (`ready`: task and member pairs, of a ready set or of the task's parked set)
-- or those waiting for their ready time (`delayed`: uuids). Only an entry still where it was read is deleted: one claimed since
-- is left to run, and one that arrived since is left to the next call.
-- ARGV: prefix, now, queue, state, n_tasks, the queue's task names, then the entries.
-- Returns {deleted, more (1 when some are left)}.
local q, state, n_tasks = ARGV[3], ARGV[4], tonumber(ARGV[5])
local first = 6 + n_tasks
local deleted = 0
local function drop(u)
  unindex(q, u)
  deleted = deleted + redis.call('DEL', msg_key(q, u))
end
local more = 0
if state == 'ready' then
  for k = first, #ARGV, 2 do
    -- an entry whose body had expired is removed too (its DEL counts nothing)
    local t, m = ARGV[k], ARGV[k + 1]
    if redis.call('ZREM', ready_key(q, t), m) + redis.call('ZREM', task_parked_key(q, t), m) > 0 then
      drop(uuid_of(m))
    end
  end
  for k = 6, first - 1 do
    if redis.call('EXISTS', ready_key(q, ARGV[k]), task_parked_key(q, ARGV[k])) > 0 then more = 1 end
  end
elseif state == 'delayed' then
  local index = delayed_key(q)
  for k = first, #ARGV do
    if redis.call('ZREM', index, ARGV[k]) == 1 then drop(ARGV[k]) end
  end
  more = redis.call('EXISTS', index)
else
  error('alsek: purge state must be ready or delayed, got ' .. tostring(state))
end
return {deleted, more}
