-- The probe of a half-open breaker ended without a recipe/structure failure (those go through failure.lua).
-- KEYS[1] breakers (hash), KEYS[2] paused domains (hash), KEYS[3] the domain's failure window (zset).
-- ARGV[1] domain, ARGV[2] task id, ARGV[3] 'close' (it worked, or the site gave its own verdict: the recipe
-- fits the page) or 'release' (it proved nothing, e.g. a network error: the next task probes at once),
-- ARGV[4] now (ms).
-- Returns 'closed', 'released', or 'ignored' (this task is not the probe any more).
local domain = ARGV[1]
local raw = redis.call('HGET', KEYS[1], domain)
if not raw then return 'ignored' end
local b = cjson.decode(raw)
if b.state ~= 'half_open' or b.probe_task ~= ARGV[2] then return 'ignored' end
if ARGV[3] == 'close' then
  redis.call('HDEL', KEYS[1], domain)
  redis.call('DEL', KEYS[3])
  local p = redis.call('HGET', KEYS[2], domain)
  if p and cjson.decode(p).by == 'breaker' then redis.call('HDEL', KEYS[2], domain) end
  return 'closed'
end
b.state = 'open'
b.probe_due_ms = ARGV[4]
b.probe_task, b.probe_owner, b.probe_at_ms = nil, nil, nil
redis.call('HSET', KEYS[1], domain, cjson.encode(b))
return 'released'
