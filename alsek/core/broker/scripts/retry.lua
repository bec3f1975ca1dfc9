-- Give a message back for another attempt, with its new body (retries + 1, ready_at), and
-- count the outcome in the throughput history.
-- ARGV: prefix, now, queue, uuid, owner, data, ready_at (caller's clock), run_ms (see
-- count_outcome), effects.
-- Replies: OK, ALREADY (a repeat of this retry), GONE, LEASE_LOST.
local q, u, owner, data = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local refused = refusal(q, u, owner)
if refused then return refused end
local key = msg_key(q, u)
local f = redis.call('HMGET', key, 'task', 'prio', 'seq')
if not f[1] then return GONE end
unindex(q, u, owner ~= '')
redis.call('DEL', lock_key(q, u))
local seq = redis.call('INCR', seq_key(q))
redis.call('HSET', key, 'data', data, 'seq', seq, 'lost', 0, 'last_owner', owner)
enqueue(q, f[1], u, tonumber(f[2]), seq, from_caller(ARGV[7]), redis.call('PTTL', key))
signal(q)
count_outcome(q, f[1], 'r', ARGV[8])
apply_effects(9)
return OK
