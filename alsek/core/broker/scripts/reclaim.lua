-- Promote due messages, return expired leases to their queues and give parked messages back
-- to keys with free slots. ARGV: prefix, now, queues...
local count = 0
for k = 3, #ARGV do
  promote(ARGV[k])
  count = count + reclaim(ARGV[k])
  recheck_parked(ARGV[k])
end
return count
