-- Promote due messages and return expired leases to their queues. ARGV: prefix, now, queues...
local count = 0
for k = 3, #ARGV do
  promote(ARGV[k])
  count = count + reclaim(ARGV[k])
end
return count
