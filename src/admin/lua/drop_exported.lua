-- Deletes an outbox record only if it was exported unchanged and nobody is reporting it right now.
-- KEYS[1] the record, KEYS[2] its export mark, KEYS[3] its report lock.
-- Returns 'dropped', 'gone' (no record), 'locked' (a report is under way) or 'not_exported'.
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('DEL', KEYS[2])
  return 'gone'
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  return 'locked'
end
local mark = redis.call('GET', KEYS[2])
if not mark or mark ~= redis.sha1hex(v) then
  return 'not_exported'
end
redis.call('DEL', KEYS[1], KEYS[2])
return 'dropped'
