-- Compare-and-delete (ledger): a lock is released only by its owner, so a slow holder whose lock expired
-- cannot delete the next holder's lock.
-- KEYS[1] the lock  ARGV[1] the owner.  Returns 1 when it was ours and is gone, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
