-- Read a slice of one user's timeline with the user's settings, in one round trip.
-- Up to ARGV[5] expired messages are pruned first; if more remain, 'pending' says how many
-- (the caller prunes them in further bounded calls and reads again), and the total already
-- leaves them out.
-- KEYS: settings, timeline, expiry
-- ARGV: mode ('recent' = the newest ARGV[2], or more if the user's stored window size is
--       larger and ARGV[4] is '1'; 'after' = up to ARGV[2] with seq > ARGV[3]), prune batch
-- Returns: {total, settings (flat HGETALL), {key, fields, key, fields, ...} oldest first, now_ms,
--          expiry of the oldest and of the newest expiring message ('' when none), pending}
local settings, timeline, expiry = KEYS[1], KEYS[2], KEYS[3]
local limit = tonumber(ARGV[2])
if ARGV[4] == '1' then
  limit = math.max(limit, tonumber(redis.call('HGET', settings, 'window_size') or '0'))
end
local now = now_ms()
local pending = prune(settings, timeline, expiry, now, tonumber(ARGV[5]))
local keys
if limit <= 0 then
  keys = {}
elseif ARGV[1] == 'recent' then
  keys = redis.call('ZREVRANGE', timeline, 0, limit - 1)
else
  keys = redis.call('ZRANGEBYSCORE', timeline, '(' .. ARGV[3], '+inf', 'LIMIT', 0, limit)
end
local rows = {}
local first, last, step = #keys, 1, -1
if ARGV[1] ~= 'recent' then
  first, last, step = 1, #keys, 1
end
for i = first, last, step do
  local values = redis.call('HMGET', keys[i], 'role', 'content', 'timestamp', 'created_at',
    'token_count', 'token_encoding', 'metadata')
  if values[1] then
    rows[#rows + 1] = keys[i]
    rows[#rows + 1] = values
  elseif pending == 0 then
    redis.call('ZREM', timeline, keys[i])
  end
end
local oldest = redis.call('ZRANGE', expiry, 0, 0, 'WITHSCORES')[2] or ''
local newest = redis.call('ZRANGE', expiry, -1, -1, 'WITHSCORES')[2] or ''
return {redis.call('ZCARD', timeline) - pending, redis.call('HGETALL', settings), rows, now,
  oldest, newest, pending}
