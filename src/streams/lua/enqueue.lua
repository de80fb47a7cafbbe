-- Enqueue one task entry unless its id is already in our hands (ledger: fetcher side).
-- KEYS[1] inflight marker  KEYS[2] task stream  KEYS[3] relisted record
-- ARGV[1] marker value (queued)  ARGV[2] marker TTL seconds  ARGV[3] MAXLEN  ARGV[4] entry field
-- ARGV[5] payload  ARGV[6] the marker value meaning "our fail is under way"  ARGV[7] site
-- Returns the new entry id; 1 when the id is ours with a fail under way (the hand-out is kept in the
-- relisted record and queued when the id is released); false (nil) for a plain duplicate.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', ARGV[4], ARGV[5])
end
if redis.call('GET', KEYS[1]) == ARGV[6] then
  redis.call('HSET', KEYS[3], 'site', ARGV[7], 'payload', ARGV[5])
  redis.call('EXPIRE', KEYS[3], ARGV[2])
  return 1
end
return false
