-- Reclaims abandoned entries (ledger): each candidate still idle for the claim-idle time is XCLAIMed
-- unless another consumer holds its task's run lease (its run may still be alive). Candidates are chosen
-- by the caller from XPENDING and the owners' heartbeats; an entry deleted meanwhile leaves the pending list.
-- KEYS[1] task stream  ARGV[1] group  ARGV[2] our consumer name  ARGV[3] claim-idle ms
-- ARGV[4] the run lease key prefix  ARGV[5] entry field  ARGV[6..] candidate entry ids
-- Returns the claimed entries as XCLAIM does ({id, {field, value, ...}}, ...).
local out = {}
for i = 6, #ARGV do
  local id = ARGV[i]
  local entry = redis.call('XRANGE', KEYS[1], id, id)
  if #entry == 0 then
    redis.call('XACK', KEYS[1], ARGV[1], id)
  else
    local free = true
    local fields = entry[1][2]
    for j = 1, #fields, 2 do
      if fields[j] == ARGV[5] then
        local ok, doc = pcall(cjson.decode, fields[j + 1])
        if ok and type(doc) == 'table' and type(doc.id) == 'string' then
          local holder = redis.call('GET', ARGV[4] .. doc.id)
          free = (not holder) or holder == ARGV[2]
        end
      end
    end
    if free then
      for _, claimed in ipairs(redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], id)) do
        out[#out + 1] = claimed
      end
    end
  end
end
return out
