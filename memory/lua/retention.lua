-- Set (ARGV[2] = seconds) or remove (ARGV[2] = '') a user's retention policy, in chunks.
-- ARGV[1] = 'start': store the policy (new messages pick it up in append.lua) and return
--   {generation, expire_at_ms, last seq}; the caller then repeats, conversation by
--   conversation,
-- ARGV[1] = 'apply' with ARGV[3..9] = generation, expire_at_ms, last seq, after seq, batch,
--   conversation id, which messages ('' the timeline, 'hidden' the branches not shown):
--   applies the policy to up to `batch` of that conversation's messages
--   with after < seq <= last and returns {next after, more (0/1)}. A newer 'start' (another
--   tab) makes older loops stop.
-- KEYS: the user's keys (common.lua)
local now = now_ms()
if ARGV[1] == 'start' then
  adopt(now)
  local generation = redis.call('HINCRBY', SETTINGS, 'retention_generation', 1)
  local expire_at = 0
  if ARGV[2] == '' then
    redis.call('HDEL', SETTINGS, 'ttl')
  else
    redis.call('HSET', SETTINGS, 'ttl', ARGV[2])
    expire_at = now + tonumber(ARGV[2]) * 1000
  end
  return {generation, expire_at, tonumber(redis.call('HGET', SETTINGS, 'seq') or '0')}
end
if redis.call('HGET', SETTINGS, 'retention_generation') ~= ARGV[3] then
  return {0, 0}
end
local batch, cid = tonumber(ARGV[7]), ARGV[8]
if begin(now, batch) > 0 then
  return {ARGV[6], 1}
end
local messages = timeline_of(cid)
if ARGV[9] == 'hidden' then -- the messages of the branches not shown (common.lua)
  messages = hidden_of(cid)
end
local rows = redis.call('ZRANGEBYSCORE', messages, '(' .. ARGV[6], ARGV[5],
  'WITHSCORES', 'LIMIT', 0, batch)
local expire_at = tonumber(ARGV[4])
for i = 1, #rows, 2 do
  local key = rows[i]
  local bytes = message_bytes(key)
  if ARGV[2] == '' then
    if redis.call('PERSIST', key) == 1 then
      forget_expiry(cid, key, bytes)
    end
  elseif redis.call('PEXPIREAT', key, expire_at) == 1 then
    if cid == LEGACY then
      redis.call('ZREM', EXPIRY, bytes .. '|' .. key)
    end
    redis.call('ZADD', EXPIRY, expire_at, expiry_member(cid, key, bytes))
  end
end
refresh_head()
if #rows < 2 * batch then
  return {ARGV[5], 0}
end
return {rows[#rows], 1}
