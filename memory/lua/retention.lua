-- Set (ARGV[1] = seconds) or remove (ARGV[1] = '') a user's retention policy and apply it to
-- every message they already have. New messages pick it up in append.lua.
-- KEYS: settings, timeline, expiry
local settings, timeline, expiry = KEYS[1], KEYS[2], KEYS[3]
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local members = redis.call('ZRANGE', timeline, 0, -1)
redis.call('DEL', expiry)
if ARGV[1] == '' then
  redis.call('HDEL', settings, 'ttl')
  for _, key in ipairs(members) do
    if redis.call('EXISTS', key) == 1 then
      redis.call('PERSIST', key)
    else
      redis.call('ZREM', timeline, key)
    end
  end
else
  redis.call('HSET', settings, 'ttl', ARGV[1])
  local expire_at = now_ms + tonumber(ARGV[1]) * 1000
  for _, key in ipairs(members) do
    if redis.call('PEXPIREAT', key, expire_at) == 1 then
      redis.call('ZADD', expiry, expire_at, key)
    else
      redis.call('ZREM', timeline, key)
    end
  end
end
return redis.call('ZCARD', timeline)
