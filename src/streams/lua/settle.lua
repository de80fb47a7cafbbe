-- The one settle of a stream entry and its task (ledger): optional dead-letter copy, XACK + XDEL, the run
-- lease dropped if ours, and, when the task is finished, its outbox record, report lock and id released.
-- KEYS[1] task stream  KEYS[2] inflight marker  KEYS[3] relisted record  KEYS[4] main stream
-- KEYS[5] sub stream  KEYS[6] outbox record  KEYS[7] outbox lock  KEYS[8] run lease  KEYS[9] dead stream
-- ARGV[1] group  ARGV[2] entry id, or '' when there is no entry to ack  ARGV[3] '1' when the task is
-- finished  ARGV[4] entry field  ARGV[5] marker value "completing"  ARGV[6] marker value "requeued"
-- ARGV[7] our consumer name  ARGV[8] dead-letter MAXLEN, or '' for no dead-letter copy
-- ARGV[9..] the dead-letter entry's field/value pairs
-- Returns 0 when the id was let go (or the task is not finished), 1 when a hand-out re-listed after our
-- fail was queued again (the marker stays, for that run), 2 when a completed task's marker was kept (it
-- stops late duplicate hand-outs until it expires).
if ARGV[8] ~= '' then
  redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[8], '*', unpack(ARGV, 9))
end
if ARGV[2] ~= '' then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[1], ARGV[2])
end
if redis.call('GET', KEYS[8]) == ARGV[7] then
  redis.call('DEL', KEYS[8])
end
if ARGV[3] ~= '1' then
  return 0
end
redis.call('DEL', KEYS[6])
if redis.call('GET', KEYS[7]) == ARGV[7] then
  redis.call('DEL', KEYS[7])
end
local again = redis.call('HMGET', KEYS[3], 'site', 'payload')
if again[2] then
  redis.call('DEL', KEYS[3])
  redis.call('SET', KEYS[2], ARGV[6], 'KEEPTTL')
  local stream = KEYS[5]
  if again[1] == 'main' then stream = KEYS[4] end
  redis.call('XADD', stream, '*', ARGV[4], again[2])
  return 1
end
if redis.call('GET', KEYS[2]) == ARGV[5] then
  return 2
end
redis.call('DEL', KEYS[2])
return 0
