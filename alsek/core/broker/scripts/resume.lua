-- Resume a paused queue and wake an idle consumer of it at once. ARGV: prefix, now, queue.
-- Returns 1 when it was paused, 0 otherwise.
local q = ARGV[3]
local was = redis.call('DEL', paused_key(q))
signal(q)
return was
