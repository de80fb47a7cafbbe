-- Deletes a hash field only if it still holds the value it was read with (the fetcher's listing records:
-- two leaders never report one lost listing twice).
-- KEYS[1] the hash  ARGV[1] the field  ARGV[2] the value read.  Returns 1 when deleted, else 0.
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
