-- A recipe/structure failure of one domain's task, for the circuit breaker.
-- KEYS[1] the domain's failure window (zset), KEYS[2] breakers (hash: domain -> JSON), KEYS[3] paused domains
-- (hash: domain -> JSON). ARGV[1] domain, ARGV[2] now (ms), ARGV[3] window (ms), ARGV[4] threshold,
-- ARGV[5] cool-down (ms), ARGV[6] task id, ARGV[7] the failure's message (short, no secrets).
-- Returns {verdict, failures}: 'opened' (this failure opened the breaker and paused the domain), 'reopened'
-- (the half-open probe failed), 'open' (already open: not counted), 'counted'.
-- Numbers inside the JSON are strings: cjson would print 13-digit millisecond times in exponent form.
local domain, now = ARGV[1], tonumber(ARGV[2])
local due = tostring(now + tonumber(ARGV[5]))

-- The breaker's pause goes in the paused hash unless an operator paused the domain (theirs wins).
local function pause(reason)
  local p = redis.call('HGET', KEYS[3], domain)
  if p and cjson.decode(p).by ~= 'breaker' then return end
  redis.call('HSET', KEYS[3], domain,
    cjson.encode({by = 'breaker', reason = reason, at_ms = ARGV[2], probe_due_ms = due}))
end

local raw = redis.call('HGET', KEYS[2], domain)
if raw then
  local b = cjson.decode(raw)
  if b.state == 'half_open' and b.probe_task == ARGV[6] then
    b.state = 'open'
    b.opened_at_ms = ARGV[2]
    b.probe_due_ms = due
    b.reason = 'probe failed: ' .. ARGV[7]
    b.probe_task, b.probe_owner, b.probe_at_ms = nil, nil, nil
    redis.call('HSET', KEYS[2], domain, cjson.encode(b))
    pause(b.reason)
    return {'reopened', tonumber(b.failures) or 0}
  end
  return {'open', tonumber(b.failures) or 0}
end

redis.call('ZADD', KEYS[1], now, ARGV[6] .. ':' .. ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local count = redis.call('ZCARD', KEYS[1])
if count < tonumber(ARGV[4]) then
  return {'counted', count}
end
local reason = string.format('%d recipe/structure failures in %d s; last: %s',
  count, math.floor(tonumber(ARGV[3]) / 1000), ARGV[7])
redis.call('HSET', KEYS[2], domain, cjson.encode({
  state = 'open', opened_at_ms = ARGV[2], probe_due_ms = due, failures = tostring(count), reason = reason}))
redis.call('DEL', KEYS[1])
pause(reason)
return {'opened', count}
