-- Read a slice of one user's timeline with the user's settings, in one round trip.
-- Up to ARGV[5] expired messages are pruned first; if more remain, 'pending' says how many
-- (the caller prunes them in further bounded calls and reads again), and the total already
-- leaves them out.
-- KEYS: settings, timeline, expiry
-- ARGV: mode ('recent' = the newest max(ARGV[2], window); 'after' = up to ARGV[2] with
--       seq > ARGV[3]), the window size wanted (ARGV[4]; '' = the user's stored size, else
--       the default ARGV[5]), prune batch (ARGV[6])
-- Returns: {total, settings (flat HGETALL), {key, fields, key, fields, ...} oldest first, now_ms,
--          expiry of the oldest expiring message ('' when none), the window size, pending}
-- The window size is decided here and only here, so one round trip reads enough messages.
local settings, timeline, expiry = KEYS[1], KEYS[2], KEYS[3]
local window = tonumber(ARGV[4])
if window == nil then
  window = tonumber(redis.call('HGET', settings, 'window_size') or ARGV[5])
end
local limit = tonumber(ARGV[2])
if ARGV[1] == 'recent' then
  limit = math.max(limit, window)
end
local now = now_ms()
local pending = prune(settings, timeline, expiry, now, tonumber(ARGV[6]))
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
return {redis.call('ZCARD', timeline) - pending, redis.call('HGETALL', settings), rows, now,
  oldest, window, pending}
