-- Read a queue's dead-letter index after pruning the entries that expired (by the server's
-- clock). ARGV: prefix, now, queue, limit (-1: every uuid, 0: none).
-- Returns {count, uuids (oldest expiry first, at most limit)}.
local q, limit = ARGV[3], tonumber(ARGV[4])
local index = dlq_index_key(q)
redis.call('ZREMRANGEBYSCORE', index, '-inf', NOW)
local uuids = {}
if limit ~= 0 then uuids = redis.call('ZRANGE', index, 0, limit < 0 and -1 or limit - 1) end
return {redis.call('ZCARD', index), uuids}
