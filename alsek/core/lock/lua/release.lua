-- Release the lock KEYS[1] only if owner ARGV[1] holds it, then wake a blocked acquirer by
-- pushing to the signal list KEYS[2], which expires after ARGV[2] ms. This is
-- python-redis-lock's release protocol, so both libraries can share locks.
-- Returns 1 when released, 0 when owner ARGV[1] did not hold the lock.
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call("DEL", KEYS[1])
redis.call("DEL", KEYS[2])
redis.call("LPUSH", KEYS[2], 1)
redis.call("PEXPIRE", KEYS[2], ARGV[2])
return 1
