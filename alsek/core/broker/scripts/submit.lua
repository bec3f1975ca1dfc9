-- Submit messages of one queue, all or nothing.
-- ARGV: prefix, now, queue, ttl, n, then n x (task, uuid, priority, ready_at, data), then effects.
-- A uuid already present with the same body is a repeat of this very call (a client retry after a
-- dropped connection) and succeeds; with another body it is a conflict and nothing is written.
local q, ttl, n = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local first = 6
local repeated = {}
for k = 0, n - 1 do
  local i = first + k * 5
  local existing = redis.call('HGET', msg_key(q, ARGV[i + 1]), 'data')
  if existing then
    if existing ~= ARGV[i + 4] then return {EXISTS, ARGV[i + 1]} end
    repeated[k] = true
  end
end
local entries = {}
for k = 0, n - 1 do
  if not repeated[k] then
    local i = first + k * 5
    entries[#entries + 1] = {ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), ARGV[i + 4]}
  end
end
if #entries > 0 then insert_many(q, entries, ttl) end
signal(q)
apply_effects(first + n * 5)
return {OK, n}
