-- Revoke a message: flag it, remove it from its queue (dead-letter copy kept), tell the worker
-- running it, if any, through pub/sub, and apply the effects (its FAILED status). A message
-- that is gone (finished, failed, expired, never submitted) is left alone: nothing is written,
-- so a revocation racing a completion cannot turn its success into a failure.
-- ARGV: prefix, now, queue, uuid, flag_ttl, data, reason, dlq_ttl, revocation channel, effects.
-- Replies: OK, GONE.
local q, u = ARGV[3], ARGV[4]
local key = msg_key(q, u)
if redis.call('EXISTS', key) == 0 then return GONE end
redis.call('SET', revoked_key(q, u), 'true', 'PX', tonumber(ARGV[5]))
local t = unindex(q, u)
release_unique(q, u)
redis.call('DEL', key, lock_key(q, u))
dead_letter(q, t, u, ARGV[6], ARGV[7], tonumber(ARGV[8]))
redis.call(PUBLISH, ARGV[9], u)
apply_effects(10)
return OK
