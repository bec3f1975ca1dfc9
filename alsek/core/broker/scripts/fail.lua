-- Fail a message for good: remove it, keep a dead-letter copy with the reason, and count the
-- outcome in the throughput history.
-- ARGV: prefix, now, queue, uuid, owner, data, reason, dlq_ttl, run_ms (see count_outcome),
-- effects.
-- Replies: OK, ALREADY (a repeat of this delivery's own finish), GONE, LEASE_LOST.
local q, u = ARGV[3], ARGV[4]
local refused, t = finish(q, u, ARGV[5])
if refused then return refused end
dead_letter(q, t, u, ARGV[6], ARGV[7], tonumber(ARGV[8]))
count_outcome(q, t, tonumber(ARGV[8]) > 0 and 'd' or 'x', ARGV[9])
apply_effects(10)
return OK
