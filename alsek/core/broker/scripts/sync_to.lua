-- Overwrite a message's stored body, wherever it is. ARGV: prefix, now, queue, uuid, data.
-- Replies: OK, GONE (neither queued nor dead-lettered).
local q, u, data = ARGV[3], ARGV[4], ARGV[5]
for _, key in ipairs({msg_key(q, u), dlq_key(q, u)}) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, 'data', data)
    return OK
  end
end
return GONE
