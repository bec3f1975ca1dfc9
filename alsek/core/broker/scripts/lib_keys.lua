-- Shared by every alsek script: the library parts (LIBRARY_PARTS in __init__.py), this one
-- first, are prepended in a fixed order to each operation's body when loaded. This part: the
-- conventions, the clock, the replies, the limits per call and the key builders.
-- Conventions: ARGV[1] is the namespace prefix ("alsek:"), ARGV[2] the caller's clock in ms.
-- KEYS declares every key the call may touch (the client names them: core/broker/keys.py);
-- KEYS[1] routes it (Redis Cluster). The builders below make the same names from the queue, so
-- a script reads as before, and the tests run each call as an ACL user allowed exactly its
-- KEYS (tests/engine/test_declared_keys.py). All keys of one queue share the hash tag
-- "{queue}", so one script touches one slot. Keys found in data (a claim's candidates, the
-- messages a sweep meets) are named by the call before: see DECLARED below.
--
-- Time is Redis's: NOW is read from TIME, so hosts with skewed clocks agree on when a message
-- is due or a lease expires. The caller's clock only translates the times it sends (a ready_at
-- computed on the caller's host) into the server's: see from_caller.
-- Reading TIME before writing needs effects replication: the default since Redis 5 and the
-- only mode since 7, where replicate_commands() is a no-op kept for compatibility.
if redis.replicate_commands then redis.replicate_commands() end
local PREFIX = ARGV[1]
local CALLER_NOW = tonumber(ARGV[2])
local NOW
do
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A time (ms) the caller computed on its own clock, on the server's: the caller meant "this
-- long from now", so the wait is kept and the clocks' difference dropped.
local function from_caller(ms) return NOW + (tonumber(ms) - CALLER_NOW) end

-- Replies of the scripts that change a message (alsek/core/broker/replies.py maps each one).
local OK = 'OK'                  -- done
local ALREADY = 'ALREADY'        -- this very request was already carried out: nothing to do
local GONE = 'GONE'              -- the message does not exist
local LEASE_LOST = 'LEASE_LOST'  -- the lease expired or another worker holds it: nothing changed
local EXISTS = 'EXISTS'          -- another message with this uuid is queued: nothing written
local REVOKED = 'REVOKED'        -- this uuid was revoked: a submit of it writes nothing
local WANT = 'WANT'              -- keys found in data are needed: sent again naming them

-- How long a wake token waits for a consumer, and how soon a lease that has no TTL (it never
-- should) is looked at again by reclaim.
local WAKE_TTL_MS = 60000
local LEASE_RECHECK_MS = 60000
-- How long a submit's request id is remembered, so that the call re-sent after a lost reply
-- changes nothing even once its messages ran: longer than redis-py's retries of one command
-- (10 tries, 5 s socket timeout) and a finishing worker's own repeats (one lease).
local REQUEST_MEMORY_MS = 120000
-- Items per Redis call or per pass, to keep each call (and each script run) short.
local ZADD_ARGS_PER_CALL = 1000  -- ZADD arguments (score, member pairs: 500 pairs)
local PROMOTE_PER_PASS = 1000    -- delayed messages made ready per pass
local RECLAIM_PER_PASS = 100     -- expired leases returned per pass
local DEL_KEYS_PER_CALL = 500    -- keys per DEL

local function qbase(q) return PREFIX .. 'queues:{' .. q .. '}' end
local function msg_key(q, u) return qbase(q) .. ':messages:' .. u end
local function lock_key(q, u) return 'lock:' .. msg_key(q, u) end
local function ready_key(q, t) return qbase(q) .. ':tasks:' .. t .. ':ready' end
local function tasks_key(q) return qbase(q) .. ':tasks' end
local function delayed_key(q) return qbase(q) .. ':delayed' end
local function leases_key(q) return qbase(q) .. ':leases' end
local function wake_key(q) return qbase(q) .. ':wake' end
local function seq_key(q) return qbase(q) .. ':seq' end
local function requests_key(q) return qbase(q) .. ':requests' end
local function dlq_index_key(q) return qbase(q) .. ':dlq' end
local function dlq_key(q, u) return qbase(q) .. ':dlq:' .. u end
local function revoked_key(q, u) return qbase(q) .. ':revoked:' .. u end
local function paused_key(q) return qbase(q) .. ':paused' end
-- Per-task mirrors of the queue's delayed, leases and dead-letter indexes (same members and
-- scores, but leases keep their first deadline), so that counting a task's messages in each
-- state is one ZCARD; and the task's served index, written by the pools' heartbeats.
local function task_key(q, t, what) return qbase(q) .. ':tasks:' .. t .. ':' .. what end
local function task_delayed_key(q, t) return task_key(q, t, 'delayed') end
local function task_leases_key(q, t) return task_key(q, t, 'leases') end
local function task_dlq_key(q, t) return task_key(q, t, 'dlq') end
local function served_key(q, t) return task_key(q, t, 'served') end
local function uuid_record_key(u) return PREFIX .. 'uuids:' .. u end
local function registry_key() return PREFIX .. 'registry:{queues}' end
local function registry_seen_key() return registry_key() .. ':seen' end
local function registry_wake_key() return registry_key() .. ':wake' end

-- Ready-set members sort by (priority score, submission sequence): FIFO within a priority.
-- A member is the sequence, zero-padded to SEQ_DIGITS, then ':' and the uuid.
local SEQ_DIGITS = 16
local function member(seq, u)
  return string.format('%0' .. SEQ_DIGITS .. 'd', tonumber(seq)) .. ':' .. u
end
local function uuid_of(m) return string.sub(m, SEQ_DIGITS + 2) end

-- Index keys live at least as long as the messages they point to, and never shorter. A key
-- found too short is given a little more than asked (an eighth, at most TTL_HEADROOM_MS), so
-- the calls that follow for a while find it long enough: a PTTL, and no PEXPIRE each.
local TTL_HEADROOM_MS = 3600000
local function extend_ttl(key, ttl)
  if not ttl or ttl <= 0 then return end
  local current = redis.call('PTTL', key)
  if current ~= -2 and current < ttl then
    redis.call('PEXPIRE', key, ttl + math.min(math.floor(ttl / 8), TTL_HEADROOM_MS))
  end
end

-- Keys found in data (a message's body, lease, limit sets): a call may touch them only when
-- its caller declared them in KEYS. A step that meets one it did not declare skips that work
-- and *wants* it instead: the call answers the keys it wants, and the caller names them in
-- its next call (docs/redis-layout.md, "Declared keys"). WANTED is the whole list the
-- next call should declare (keys still needed are wanted again, declared or not); BLOCKED
-- says some work waited for a key this call did not declare. DECLARED (a key -> true) is
-- built from KEYS at its first lookup: a call that meets no key in data builds none, and a
-- script that never looks carries none of it (assemble.py).
local DECLARED = setmetatable({}, {__index = function(known, key)
  setmetatable(known, nil)
  for _, name in ipairs(KEYS) do known[name] = true end
  return rawget(known, key)
end})
local WANTED, WANTED_SET = {}, {}
local BLOCKED = false

local function want(key)
  if not WANTED_SET[key] then
    WANTED_SET[key] = true
    WANTED[#WANTED + 1] = key
  end
end

-- Whether the call declared every one of `names`; those it did not are wanted, and the call
-- is noted as blocked.
local function has_keys(names)
  local ok = true
  for _, key in ipairs(names) do
    if not DECLARED[key] then
      want(key)
      ok = false
    end
  end
  if not ok then BLOCKED = true end
  return ok
end

-- The same for work that recurs (a sweep's sets): all of `names` are wanted again, so the
-- next call declares them too.
local function declared(names)
  for _, key in ipairs(names) do want(key) end
  return has_keys(names)
end

-- A reply carrying the wanted keys: `first`, blocked (0/1), their count, the keys, then the
-- items of `rest`.
local function with_wanted(first, rest)
  local out = {first, BLOCKED and 1 or 0, #WANTED}
  for _, key in ipairs(WANTED) do out[#out + 1] = key end
  for _, item in ipairs(rest) do out[#out + 1] = item end
  return out
end
