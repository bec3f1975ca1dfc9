-- Party ARGV[1] arrives at the barrier KEYS[1] (a SET of the parties arrived) that opens once
-- ARGV[2] parties arrived; the party that opens it pushes ARGV[2] wake-up tokens to the list
-- KEYS[2], on which waiting parties block. Both keys live ARGV[3] ms after the last arrival.
-- A party arriving again (a waiter checking, a call re-sent after a lost reply) is counted
-- once; once open, the barrier takes no more members.
-- Returns 1 when the barrier is open, 0 while it waits for more parties.
local party, parties, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('SCARD', KEYS[1]) >= parties then return 1 end
redis.call('SADD', KEYS[1], party)
redis.call('PEXPIRE', KEYS[1], ttl)
if redis.call('SCARD', KEYS[1]) < parties then return 0 end
for _ = 1, parties do redis.call('RPUSH', KEYS[2], 1) end
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
