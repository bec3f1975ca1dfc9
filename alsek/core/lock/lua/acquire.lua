-- Take the lock KEYS[1] for owner ARGV[1], expiring after ARGV[2] ms ("" = never expires).
-- One call, so "is it already mine?" and "take it if free" cannot be torn apart.
-- Returns {1, 0} when taken now, {2, pttl} when owner ARGV[1] already holds it, and {0, pttl}
-- when another owner does; pttl is the ms left on the lock (-1 when it never expires), so a
-- waiter knows when to look again even if nobody releases it.
local holder = redis.call("GET", KEYS[1])
if holder == ARGV[1] then
  return {2, redis.call("PTTL", KEYS[1])}
end
if holder then
  return {0, redis.call("PTTL", KEYS[1])}
end
if ARGV[2] == "" then
  redis.call("SET", KEYS[1], ARGV[1])
else
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
end
return {1, 0}
