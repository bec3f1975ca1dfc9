-- Overwrite a message's stored body, wherever it is. ARGV: prefix, now, queue, uuid, data.
local q, u, data = ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', msg_key(q, u)) == 1 then
  redis.call('HSET', msg_key(q, u), 'data', data)
  return 'QUEUE'
end
if redis.call('EXISTS', dlq_key(q, u)) == 1 then
  redis.call('HSET', dlq_key(q, u), 'data', data)
  return 'DLQ'
end
return 'NOT_FOUND'
