-- Claim up to n ready messages across sources (queues, in order), each under a fresh lease.
-- ARGV: prefix, now, n, lease_ttl, owner_base, request_id,
--       status key template, status channel template, status payload, status ttl (0: none),
--       n_tracked (-1: every task) + tracked task names,
--       n_sources + per source: queue, n_tasks + task names. n_tasks > 0: these tasks, drained
--       in order; 0: every task of the queue, best priority first; -k: every task but these k
--       (they belong to other pools), best priority first.
-- Returns {next_due, then per message: queue, task, uuid, data, lost, owner}; next_due is the
-- earliest time (ms) something becomes due or a lease expires, -1 when nothing is pending.
local n, lease_ttl, owner_base, rid = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6]
local s_key, s_channel, s_payload, s_ttl = ARGV[7], ARGV[8], ARGV[9], tonumber(ARGV[10])
local i = 11
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
  local tasks, excluded = nil, nil
  if n_tasks > 0 then
    tasks = {}
    for k = 1, n_tasks do tasks[k] = ARGV[i]; i = i + 1 end
  elseif n_tasks < 0 then
    excluded = {}
    for _ = 1, -n_tasks do excluded[ARGV[i]] = true; i = i + 1 end
  end
  sources[#sources + 1] = {q, tasks, excluded}
end

-- A retried call (the reply was lost with the connection) gets the first call's answer. Each
-- consumer claims one request at a time, so only its last reply can be asked for again: one
-- hash per consumer (owner), field = request id, replaced by every claim of that consumer and
-- dropped by an empty one, so no reply outlives the next claim.
local cache_key = nil
if rid ~= '' and #sources > 0 then
  cache_key = qbase(sources[1][1]) .. ':claim:' .. owner_base
  local cached = redis.call('HGET', cache_key, rid)
  if cached then return cjson.decode(cached) end
end

local function head(key)
  local h = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if h[1] then return h[1], tonumber(h[2]) end
  return nil, nil
end

-- The next message of a source: first task with work (ordered), or best across tasks.
local function pick(q, tasks, ordered)
  local best_t, best_m, best_s = nil, nil, nil
  for _, t in ipairs(tasks) do
    local m, s = head(ready_key(q, t))
    if m then
      if ordered then return t, m end
      if best_m == nil or s < best_s or (s == best_s and m < best_m) then
        best_t, best_m, best_s = t, m, s
      end
    end
  end
  return best_t, best_m
end

local function fill(template, q, t, u)
  local function esc(s) return (string.gsub(s, '%%', '%%%%')) end
  local out = string.gsub(template, '<queue>', esc(q))
  out = string.gsub(out, '<task>', esc(t))
  out = string.gsub(out, '<uuid>', esc(u))
  return out
end

local out = {-1}
local next_due = -1
local function note(key)
  local _, score = head(key)
  if score and (next_due < 0 or score < next_due) then next_due = score end
end

for _, src in ipairs(sources) do
  promote(src[1])
  reclaim(src[1])
end

-- Lease one popped message; returns its body's PTTL, or nil when the body expired (skipped).
-- The leases index TTL is extended once per queue, to the longest-lived message leased.
local function lease(q, t, m)
  local u = uuid_of(m)
  local key = msg_key(q, u)
  local f = redis.call('HMGET', key, 'data', 'lost')
  if not f[1] then return nil end
  local owner = owner_base .. ':' .. redis.call('HINCRBY', key, 'deliveries', 1)
  redis.call('SET', lock_key(q, u), owner, 'PX', lease_ttl)
  redis.call('ZADD', leases_key(q), NOW + lease_ttl, u)
  if s_key ~= '' and (tracked == nil or tracked[t]) then
    if s_ttl > 0 then
      redis.call('SET', fill(s_key, q, t, u), s_payload, 'PX', s_ttl)
    else
      redis.call('SET', fill(s_key, q, t, u), s_payload)
    end
    redis.call(PUBLISH, fill(s_channel, q, t, u), s_payload)
  end
  local n_out = #out
  out[n_out + 1] = q; out[n_out + 2] = t; out[n_out + 3] = u
  out[n_out + 4] = f[1]; out[n_out + 5] = tonumber(f[2]) or 0; out[n_out + 6] = owner
  return redis.call('PTTL', key)
end

local claimed = 0
for _, src in ipairs(sources) do
  local q = src[1]
  local ordered = src[2] ~= nil
  local tasks = src[2]
  if not tasks then
    tasks = {}
    for _, t in ipairs(redis.call('SMEMBERS', tasks_key(q))) do
      if not (src[3] and src[3][t]) then tasks[#tasks + 1] = t end
    end
  end
  local longest = 0
  while claimed < n do
    if #tasks == 1 then
      -- One task: pop the rest of the batch at once (stale entries are popped and skipped).
      local popped = redis.call('ZPOPMIN', ready_key(q, tasks[1]), n - claimed)
      if #popped == 0 then break end
      for k = 1, #popped, 2 do
        local pttl = lease(q, tasks[1], popped[k])
        if pttl then
          claimed = claimed + 1
          if pttl > longest then longest = pttl end
        end
      end
    else
      local t, m = pick(q, tasks, ordered)
      if not t then break end
      redis.call('ZREM', ready_key(q, t), m)
      local pttl = lease(q, t, m)
      if pttl then
        claimed = claimed + 1
        if pttl > longest then longest = pttl end
      end
    end
  end
  extend_ttl(leases_key(q), longest)
  if claimed >= n then
    -- Full batch: if work remains, pass the wake-up on to another idle consumer.
    if pick(q, tasks, ordered) then signal(q) end
    break
  end
  note(delayed_key(q))
  note(leases_key(q))
end
out[1] = next_due
if cache_key then
  redis.call('DEL', cache_key)
  if claimed > 0 then
    redis.call('HSET', cache_key, rid, cjson.encode(out))
    redis.call('PEXPIRE', cache_key, lease_ttl)
  end
end
return out
