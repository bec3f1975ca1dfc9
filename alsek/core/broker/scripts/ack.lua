-- Acknowledge (or remove) a message: delete its body, indexes and lease, count the outcome in
-- the throughput history, then apply effects.
-- ARGV: prefix, now, queue, uuid, owner ('' for a producer/operator), task, run_ms (see
-- count_outcome; '' for a remove: not counted), effects.
-- Replies: OK, ALREADY (a repeat of this delivery's own ack: effects not applied again),
-- GONE, LEASE_LOST.
local refused = finish(ARGV[3], ARGV[4], ARGV[5])
if refused then return refused end
count_outcome(ARGV[3], ARGV[6], 's', ARGV[7])
apply_effects(8)
return OK
