-- Set (ARGV[2] = seconds) or remove (ARGV[2] = '') a user's retention policy, in chunks.
-- ARGV[1] = 'start': store the policy (new messages pick it up in append.lua) and return
--   {generation, expire_at_ms, last seq}; the caller then repeats
-- ARGV[1] = 'apply' with ARGV[3..7] = generation, expire_at_ms, last seq, after seq, batch:
--   applies the policy to up to `batch` messages with after < seq <= last and returns
--   {next after, more (0/1)}. A newer 'start' (another tab) makes older loops stop.
-- KEYS: settings, timeline, expiry
local settings, timeline, expiry = KEYS[1], KEYS[2], KEYS[3]
local now = now_ms()
if ARGV[1] == 'start' then
  local generation = redis.call('HINCRBY', settings, 'retention_generation', 1)
  local expire_at = 0
  if ARGV[2] == '' then
    redis.call('HDEL', settings, 'ttl')
  else
    redis.call('HSET', settings, 'ttl', ARGV[2])
    expire_at = now + tonumber(ARGV[2]) * 1000
  end
  return {generation, expire_at, tonumber(redis.call('HGET', settings, 'seq') or '0')}
end
if redis.call('HGET', settings, 'retention_generation') ~= ARGV[3] then
  return {0, 0}
end
local batch = tonumber(ARGV[7])
if prune(settings, timeline, expiry, now, batch) > 0 then
  return {ARGV[6], 1}
end
local rows = redis.call('ZRANGEBYSCORE', timeline, '(' .. ARGV[6], ARGV[5], 'WITHSCORES',
  'LIMIT', 0, batch)
local expire_at = tonumber(ARGV[4])
for i = 1, #rows, 2 do
  local key = rows[i]
  local bytes = message_bytes(key)
  if ARGV[2] == '' then
    if redis.call('PERSIST', key) == 1 then
      redis.call('ZREM', expiry, expiry_member(key, bytes))
    end
  elseif redis.call('PEXPIREAT', key, expire_at) == 1 then
    redis.call('ZADD', expiry, expire_at, expiry_member(key, bytes))
  end
end
if #rows < 2 * batch then
  return {ARGV[5], 0}
end
return {rows[#rows], 1}
