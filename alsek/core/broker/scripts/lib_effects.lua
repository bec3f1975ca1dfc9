-- Broker library, read after lib_status.lua: side effects applied with an operation, and the
-- unique check a submit makes before writing.

-- Side effects written in the same round trip, only when the operation succeeds. ARGV[i] holds
-- their count, then each is an opcode and its arguments:
--   S key value ttl nx   SET (ttl: >0 PX, 0 none, <0 KEEPTTL; nx '1': keep an existing value)
--   P channel payload    PUBLISH
--   Z key score member ttl   ZADD, and the key lives at least ttl ms (0: no TTL change)
--   R key member         ZREM
--   D key                DEL
--   H key value max ttl  RPUSH '<now> <value>' (a status history), keep the last max items,
--                        PEXPIRE ttl (0: none)
--   K key ttl            keep key ttl more ms (PEXPIRE), for good (-1: PERSIST), or not (0: DEL)
--   G key                a member of the group counted at key succeeded (group_member_done)
--   U key uuid queue ttl mode status_tpl index_tpl   the submitted message holds a unique key
--                        (hold_unique; unique_yield reads it before the message is written)
--   L queue uuid climit ckey rlimit rwindow   the message carries its task's limits
--                        (carry_limits; 0: none of that kind)
-- With apply false they are only stepped over. Returns the index after the last one.
local EFFECT_ARGS = {S = 4, P = 2, Z = 4, R = 2, D = 1, H = 4, K = 2, G = 1, U = 7, L = 6}

local function effects_at(i, apply)
  local count = tonumber(ARGV[i]); i = i + 1
  for _ = 1, count do
    local op = ARGV[i]
    local width = EFFECT_ARGS[op]
    if not width then error('alsek: unknown effect opcode ' .. tostring(op)) end
    if not apply then
      -- stepped over
    elseif op == 'S' then
      local ttl = tonumber(ARGV[i + 3])
      local args = {'SET', ARGV[i + 1], ARGV[i + 2]}
      if ttl > 0 then
        args[#args + 1] = 'PX'; args[#args + 1] = ttl
      elseif ttl < 0 then
        args[#args + 1] = 'KEEPTTL'
      end
      if ARGV[i + 4] == '1' then args[#args + 1] = 'NX' end
      redis.call(unpack(args))
    elseif op == 'P' then
      redis.call(PUBLISH, ARGV[i + 1], ARGV[i + 2])
    elseif op == 'Z' then
      redis.call('ZADD', ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
      extend_ttl(ARGV[i + 1], tonumber(ARGV[i + 4]))
    elseif op == 'R' then
      redis.call('ZREM', ARGV[i + 1], ARGV[i + 2])
    elseif op == 'H' then
      push_history(ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]))
    elseif op == 'K' then
      local ttl = tonumber(ARGV[i + 2])
      if ttl > 0 then
        redis.call('PEXPIRE', ARGV[i + 1], ttl)
      elseif ttl < 0 then
        redis.call('PERSIST', ARGV[i + 1])
      else
        redis.call('DEL', ARGV[i + 1])
      end
    elseif op == 'G' then
      group_member_done(ARGV[i + 1])
    elseif op == 'U' then
      hold_unique(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4]), ARGV[i + 5])
    elseif op == 'L' then
      carry_limits(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6])
    else
      redis.call('DEL', ARGV[i + 1])
    end
    i = i + 1 + width
  end
  return i
end

local function apply_effects(i) return effects_at(i, true) end

-- Keys held by messages of this very call (a submit of several messages with one key): the
-- first holds it, the others yield to it.
local UNIQUE_IN_CALL = {}

-- Before a message whose effects start at ARGV[i] is written: the uuid of the message it yields
-- to when its U effect's key is held ('simple', 'throttle'), else nil (write it, or it has no
-- key). 'debounce' never yields: a holder still waiting (not leased) is removed first, with
-- its status (the templates' key and live-index entry); a running one keeps running.
local function unique_yield(i)
  local count = tonumber(ARGV[i]); i = i + 1
  local at
  for _ = 1, count do
    if ARGV[i] == 'U' then at = i; break end
    i = i + 1 + EFFECT_ARGS[ARGV[i]]
  end
  if not at then return nil end
  local key, u, q, mode = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 5]
  local held = UNIQUE_IN_CALL[key] or redis.call('GET', key)
  if held and mode == 'simple' and not UNIQUE_IN_CALL[key]
    and redis.call('EXISTS', msg_key(q, held)) == 0 then
    held = false  -- its holder ended without letting go (expired, purged): the key is free
  end
  if held and (mode ~= 'debounce' or UNIQUE_IN_CALL[key]) then return held end
  UNIQUE_IN_CALL[key] = u
  if not held or redis.call('EXISTS', lock_key(q, held)) == 1 then return nil end
  local t = unindex(q, held)
  if t then
    redis.call('DEL', msg_key(q, held))
    local names = {queue = q, task = t, uuid = held}
    if ARGV[at + 6] ~= '' then redis.call('DEL', fill(ARGV[at + 6], names)) end
    if ARGV[at + 7] ~= '' then redis.call('ZREM', fill(ARGV[at + 7], names), t .. ':' .. held) end
  end
  return nil
end

-- Before anything is written: whether the call declared the keys of the holder of the unique
-- key a message (effects at ARGV[i]) carries, which unique_yield reads or removes (its body and
-- lease; once its body is readable, its task's sets, its status and its limit sets). The key's
-- value names the holder: the missing keys are wanted, and the caller sends the submit again
-- with them (nothing written meanwhile).
local function unique_holder_declared(i)
  local count = tonumber(ARGV[i]); i = i + 1
  for _ = 1, count do
    if ARGV[i] == 'U' then
      local key, u, q = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
      local held = redis.call('GET', key)
      if not held or held == u then return true end
      local body = msg_key(q, held)
      if not has_keys({body, lock_key(q, held)}) then return false end
      local f = redis.call('HMGET', body, 'task', 'climit', 'ckey')
      if not f[1] then return true end
      local t, names = f[1], {queue = q, task = f[1], uuid = held}
      local wanted = {ready_key(q, t), task_delayed_key(q, t), task_leases_key(q, t),
        task_parked_key(q, t)}
      if ARGV[i + 6] ~= '' then wanted[#wanted + 1] = fill(ARGV[i + 6], names) end
      if ARGV[i + 7] ~= '' then wanted[#wanted + 1] = fill(ARGV[i + 7], names) end
      if f[2] then
        for _, name in ipairs(limit_keys(q, t, f[3] or '')) do wanted[#wanted + 1] = name end
      end
      return has_keys(wanted)
    end
    i = i + 1 + EFFECT_ARGS[ARGV[i]]
  end
  return true
end
