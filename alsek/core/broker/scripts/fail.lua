-- Fail a message for good: remove it and keep a dead-letter copy with the reason.
-- ARGV: prefix, now, queue, uuid, owner, data, reason, dlq_ttl, effects.
local q, u, owner = ARGV[3], ARGV[4], ARGV[5]
local key = msg_key(q, u)
if not holds_lease(q, u, owner) then
  if redis.call('EXISTS', key) == 0 then return 'GONE' end
  return 'LEASE_LOST'
end
unindex(q, u)
redis.call('DEL', key, lock_key(q, u))
dead_letter(q, u, ARGV[6], ARGV[7], tonumber(ARGV[8]))
apply_effects(9)
return 'OK'
