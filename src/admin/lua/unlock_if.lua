-- Frees a report lock only if it is still held by the holder that was read (compare-and-delete).
-- KEYS[1] the lock. ARGV[1] the holder. Returns 1 when freed.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
