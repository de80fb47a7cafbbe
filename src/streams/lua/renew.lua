-- One renewal by a live executor (ledger): its heartbeat, the idle time of the entries it holds (an
-- entry another consumer took meanwhile is not stolen back) and the run leases of the tasks it runs (a
-- lease that vanished, e.g. with an outage longer than its TTL, is taken back while the entry is ours).
-- KEYS[1] main stream  KEYS[2] sub stream  KEYS[3] our heartbeat
-- ARGV[1] group  ARGV[2] our consumer name  ARGV[3] TTL ms (heartbeat and run leases)  ARGV[4] now, ms
-- ARGV[5] the run lease key prefix  ARGV[6..] triples: stream (1 main, 2 sub), entry id, task id ('' for
-- an entry whose run has not taken its lease)
-- Returns the triples' entry ids whose run lease another consumer holds: those runs must stop.
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[3])
local stolen = {}
for i = 6, #ARGV, 3 do
  local stream = KEYS[tonumber(ARGV[i])]
  local id = ARGV[i + 1]
  local mine = redis.call('XPENDING', stream, ARGV[1], id, id, 1, ARGV[2])
  if #mine > 0 then
    redis.call('XCLAIM', stream, ARGV[1], ARGV[2], 0, id, 'JUSTID')
  end
  if ARGV[i + 2] ~= '' then
    local lease = ARGV[5] .. ARGV[i + 2]
    local holder = redis.call('GET', lease)
    if holder == ARGV[2] then
      redis.call('PEXPIRE', lease, ARGV[3])
    elseif holder then
      stolen[#stolen + 1] = id
    elseif #mine > 0 then
      -- Vanished (an outage longer than its TTL) while the entry is still ours: taken back. An entry
      -- acked meanwhile is not pending any more, and its settled task gets no lease again.
      redis.call('SET', lease, ARGV[2], 'PX', ARGV[3])
    end
  end
end
return stolen
