-- May this task of a domain paused by the circuit breaker run as its probe (half-open)?
-- KEYS[1] breakers (hash), KEYS[2] paused domains (hash). ARGV[1] domain, ARGV[2] now (ms), ARGV[3] task id,
-- ARGV[4] owner (consumer name), ARGV[5] how long a probe may run before another may take its place (ms).
-- Returns 'probe' (run it; the breaker is half-open with this task as its probe), 'held', or 'run' (the
-- domain is no longer paused).
local domain, now = ARGV[1], tonumber(ARGV[2])
local p = redis.call('HGET', KEYS[2], domain)
local raw = redis.call('HGET', KEYS[1], domain)
if p and cjson.decode(p).by ~= 'breaker' then
  return 'held'
end
if not raw then
  -- A breaker pause whose breaker is gone (resumed, or closed by another probe): nothing holds it.
  if p then redis.call('HDEL', KEYS[2], domain) end
  return 'run'
end
local b = cjson.decode(raw)
local free = (b.state == 'open' and now >= tonumber(b.probe_due_ms))
  or (b.state == 'half_open'
      and (b.probe_task == ARGV[3] or now >= tonumber(b.probe_at_ms) + tonumber(ARGV[5])))
if not free then
  return 'held'
end
b.state = 'half_open'
b.probe_task, b.probe_owner, b.probe_at_ms = ARGV[3], ARGV[4], ARGV[2]
redis.call('HSET', KEYS[1], domain, cjson.encode(b))
return 'probe'
