-- Takes (or keeps) a task's run lease, the fence that keeps a task from running on two executors at once.
-- KEYS[1] run lease  ARGV[1] our consumer name  ARGV[2] TTL ms
-- Returns 1 when the lease is ours now, 0 when another consumer holds it.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
