-- Takes or renews a lease held under a token (the fetcher's leader lease): extended when ours, taken
-- when free, left alone when another holds it. Released with unlock.lua.
-- KEYS[1] the lease  ARGV[1] our token  ARGV[2] TTL ms.  Returns 1 when we hold it afterwards, else 0.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
