-- Was this outbox record exported unchanged? KEYS[1] the record, KEYS[2] its export mark. Returns 1 or 0.
local v = redis.call('GET', KEYS[1])
local mark = redis.call('GET', KEYS[2])
if v and mark and mark == redis.sha1hex(v) then return 1 end
return 0
