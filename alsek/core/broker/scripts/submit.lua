-- Submit messages of one queue, all or nothing, each with its own effects (e.g. its SUBMITTED
-- status), applied only when that message is written.
-- ARGV: prefix, now, queue, ttl, request id ('' for none), record ttl (0: none), n, then
-- n x (task, uuid, priority, ready_at (caller's clock), data, effects). With a record ttl,
-- each message written gets its uuid record (queue and task) for that long; a message of a
-- callback chain has its own among its effects (with its progenitor), which comes after.
-- Replies: {OK, n, then (uuid, holder uuid, holder's body or '') for each message that yielded
-- to the holder of its unique key (unique_yield): it is not written}; {EXISTS, uuid} when a
-- uuid is queued with another body, {REVOKED, uuid} when a uuid was revoked: then nothing is
-- written; {WANT, 0, keys} when the holder of a unique key has keys the call did not declare
-- (nothing written: sent again with them).
-- A repeat changes nothing and applies no effect (it only rewrites its request memory, for a
-- WAIT: confirm_repeat): a request id seen in the last REQUEST_MEMORY_MS (the call re-sent
-- after a lost reply or a replication shortfall, even once its messages ran), or a message
-- queued with this very body. The request id is remembered as it is checked, and forgotten
-- again when the call answers anything but OK (it wrote nothing).
local q, ttl, rid, record_ttl, n = ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]),
  tonumber(ARGV[7])
if seen_request(q, rid) then
  confirm_repeat('PEXPIRE', requests_key(q), REQUEST_MEMORY_MS)
  return {OK, n}
end
local starts = {}
local i = 8
for k = 1, n do
  starts[k] = i
  i = effects_at(i + 5, false)
end
-- The holders of unique keys are found in data: with keys the call did not declare, it
-- writes nothing and answers {WANT, 0, keys...}; the caller sends it again naming them.
local ready = true
for k = 1, n do ready = unique_holder_declared(starts[k] + 5) and ready end
if not ready then
  forget_request(q, rid)
  return {WANT, 0, unpack(WANTED)}
end
local entries, fresh, yielded = {}, {}, {}
for k = 1, n do
  local at = starts[k]
  local u, data = ARGV[at + 1], ARGV[at + 4]
  local existing = redis.call('HGET', msg_key(q, u), 'data')
  if existing then
    if existing ~= data then
      forget_request(q, rid)
      return {EXISTS, u}
    end
  elseif redis.call('EXISTS', revoked_key(q, u)) == 1 then
    forget_request(q, rid)
    return {REVOKED, u}
  else
    local holder = unique_yield(at + 5)
    if holder then
      local body = redis.call('HGET', msg_key(q, holder), 'data') or ''
      yielded[#yielded + 1] = u; yielded[#yielded + 1] = holder; yielded[#yielded + 1] = body
    else
      entries[#entries + 1] = {ARGV[at], u, tonumber(ARGV[at + 2]), from_caller(ARGV[at + 3]),
        data}
      fresh[#fresh + 1] = at
    end
  end
end
local last = 0
if #entries > 0 then
  last = insert_many(q, entries, ttl)
  if record_ttl > 0 then
    for _, e in ipairs(entries) do
      redis.call('SET', uuid_record_key(e[2]), q .. '\31' .. e[1] .. '\31', 'PX', record_ttl)
    end
  end
  for _, at in ipairs(fresh) do apply_effects(at + 5) end
  signal(q)
end
prune_requests(q, last, #entries)
return {OK, n, unpack(yielded)}
