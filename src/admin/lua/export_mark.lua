-- Marks an outbox record as exported, if it still holds the value that was written to the export file.
-- KEYS[1] the record, KEYS[2] its export mark. ARGV[1] the exported (sealed) value, ARGV[2] mark TTL (s).
-- Returns 1 when marked, 0 when the record changed or went meanwhile.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], redis.sha1hex(ARGV[1]), 'EX', ARGV[2])
  return 1
end
return 0
