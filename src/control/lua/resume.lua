-- An operator resumes a domain: its pause goes, and so does its circuit breaker (open or half-open).
-- KEYS[1] paused domains (hash), KEYS[2] breakers (hash), KEYS[3] the domain's failure window (zset).
-- ARGV[1] domain. Returns {was paused (0/1), had a breaker (0/1)}.
local paused = redis.call('HDEL', KEYS[1], ARGV[1])
local breaker = redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
return {paused, breaker}
