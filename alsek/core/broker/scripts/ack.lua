-- Acknowledge (or remove) a message: delete its body, indexes and lease, then apply effects.
-- ARGV: prefix, now, queue, uuid, owner ('' for a producer/operator), effects.
-- GONE: the lease is not ours and the message no longer exists (a repeat of our own ack after a
-- dropped connection, or someone else finished it): nothing to do.
local q, u, owner = ARGV[3], ARGV[4], ARGV[5]
local key = msg_key(q, u)
if not holds_lease(q, u, owner) then
  if redis.call('EXISTS', key) == 0 then return 'GONE' end
  return 'LEASE_LOST'
end
unindex(q, u)
redis.call('DEL', key, lock_key(q, u))
apply_effects(6)
return 'OK'
