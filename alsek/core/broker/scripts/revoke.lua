-- Revoke a message: flag it, remove it from its queue (dead-letter copy kept) and tell the worker
-- running it, if any, through pub/sub. ARGV: prefix, now, queue, uuid, flag_ttl, data, reason,
-- dlq_ttl, revocation channel, effects.
local q, u = ARGV[3], ARGV[4]
redis.call('SET', revoked_key(q, u), 'true', 'PX', tonumber(ARGV[5]))
local key = msg_key(q, u)
local existed = redis.call('EXISTS', key)
unindex(q, u)
redis.call('DEL', key, lock_key(q, u))
if existed == 1 then dead_letter(q, u, ARGV[6], ARGV[7], tonumber(ARGV[8])) end
redis.call(PUBLISH, ARGV[9], u)
apply_effects(10)
return OK
