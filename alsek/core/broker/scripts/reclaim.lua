-- Promote due messages, return expired leases to their queues and give parked messages back
-- to keys with free slots. ARGV: prefix, now, queues... KEYS: the queues' own keys, then
-- the keys the previous call wanted (the messages it met are found in data: see declared).
-- Returns {count, blocked, n_wanted, wanted keys}: blocked, work was left for want of keys.
local count = 0
for k = 3, #ARGV do
  promote(ARGV[k])
  count = count + reclaim(ARGV[k])
  recheck_parked(ARGV[k])
end
return with_wanted(count, {})
