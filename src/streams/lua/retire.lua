-- Deletes one consumer from the group on both task streams, only if it has nothing pending on either and has
-- been idle at least ARGV[3] ms on each stream it is known on (checked and done atomically, so an entry
-- delivered to it meanwhile is never dropped from the pending list).
-- Used by an executor leaving cleanly (minimum idle 0), its reclaim pass's prune of consumers gone a day,
-- and `pwctl consumers prune`. The consumer's heartbeat goes with it.
-- KEYS[1] main stream, KEYS[2] sub stream, KEYS[3] its heartbeat. ARGV[1] group, ARGV[2] consumer,
-- ARGV[3] minimum idle (ms). Returns 'pruned', 'busy' (pending entries or recently active) or 'unknown'.
local found = false
for i = 1, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[i], ARGV[1])
    if ok then
      for _, c in ipairs(consumers) do
        local f = {}
        for j = 1, #c, 2 do f[c[j]] = c[j + 1] end
        if f['name'] == ARGV[2] then
          found = true
          if tonumber(f['pending']) > 0 or tonumber(f['idle']) < tonumber(ARGV[3]) then
            return 'busy'
          end
        end
      end
    end
  end
end
if not found then
  redis.call('DEL', KEYS[3])
  return 'unknown'
end
for i = 1, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    pcall(redis.call, 'XGROUP', 'DELCONSUMER', KEYS[i], ARGV[1], ARGV[2])
  end
end
redis.call('DEL', KEYS[3])
return 'pruned'
