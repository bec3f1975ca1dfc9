-- Delete some dead letters of a queue. ARGV: prefix, now, queue, uuids... Returns how many
-- existed.
local q = ARGV[3]
local deleted = 0
for k = 4, #ARGV do
  undead(q, ARGV[k])
  deleted = deleted + redis.call('DEL', dlq_key(q, ARGV[k]))
end
return deleted
