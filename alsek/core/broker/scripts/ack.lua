-- Acknowledge (or remove) a message: delete its body, indexes and lease, then apply effects.
-- ARGV: prefix, now, queue, uuid, owner ('' for a producer/operator), effects.
-- Replies: OK, ALREADY (a repeat of this delivery's own ack: effects not applied again),
-- GONE, LEASE_LOST.
local refused = finish(ARGV[3], ARGV[4], ARGV[5])
if refused then return refused end
apply_effects(6)
return OK
