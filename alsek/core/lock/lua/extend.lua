-- Reset the TTL of the lock KEYS[1] to ARGV[2] ms, only if owner ARGV[1] still holds it.
-- Returns 1 when extended, 0 when the lock is gone or held by another owner.
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call("PEXPIRE", KEYS[1], ARGV[2])
return 1
