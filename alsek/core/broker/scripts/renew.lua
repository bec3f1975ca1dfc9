-- Extend leases still held by their owner. ARGV: prefix, now, lease_ttl, n, n x (queue, uuid, owner).
-- Returns one flag per lease: 1 renewed, 0 lost (expired, taken by someone else, or given
-- back), -1 gone (the message was finished meanwhile, e.g. by its run just before this renewal).
local ttl, n = tonumber(ARGV[3]), tonumber(ARGV[4])
local flags = {}
for k = 0, n - 1 do
  local q, u, owner = ARGV[5 + k * 3], ARGV[6 + k * 3], ARGV[7 + k * 3]
  local refused, how = lease_refusal(q, u, owner)
  if not refused then
    redis.call('PEXPIRE', lock_key(q, u), ttl)
    redis.call('ZADD', leases_key(q), 'XX', NOW + ttl, u)
    flags[#flags + 1] = 1
  elseif refused == GONE or how == 'finished' then
    flags[#flags + 1] = -1
  else
    flags[#flags + 1] = 0
  end
end
return flags
