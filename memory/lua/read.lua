-- Read a slice of one conversation's timeline with the user's settings and the conversation's
-- record, in one round trip. Up to ARGV[6] expired messages are pruned first; if more remain,
-- 'pending' says how many (the caller prunes them in further bounded calls and reads again),
-- and the total already leaves them out.
-- KEYS: the user's keys (common.lua)
-- ARGV: mode ('recent' = the newest max(ARGV[2], window); 'after' = up to ARGV[2] with
--       seq > ARGV[3]), the window size wanted (ARGV[4]; '' = the user's stored size, else
--       the default ARGV[5]), prune batch (ARGV[6]), conversation id (ARGV[7])
-- Returns: {total, settings (flat HGETALL), {key, fields, key, fields, ...} oldest first, now_ms,
--          expiry of the oldest expiring message ('' when none), the window size, pending,
--          the conversation's info row (false when it has no record), its newest seq}
-- The window size is decided here and only here, so one round trip reads enough messages.
local timeline = timeline_of(ARGV[7])
local window = tonumber(ARGV[4])
if window == nil then
  window = tonumber(redis.call('HGET', SETTINGS, 'window_size') or ARGV[5])
end
local limit = tonumber(ARGV[2])
if ARGV[1] == 'recent' then
  limit = math.max(limit, window)
end
local now = now_ms()
local pending = begin(now, tonumber(ARGV[6]))
local keys
if limit <= 0 then
  keys = {}
elseif ARGV[1] == 'recent' then
  keys = redis.call('ZREVRANGE', timeline, 0, limit - 1)
else
  keys = redis.call('ZRANGEBYSCORE', timeline, '(' .. ARGV[3], '+inf', 'LIMIT', 0, limit)
end
local rows, vanished = {}, 0
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
    vanished = vanished + redis.call('ZREM', timeline, keys[i])
  end
end
if vanished > 0 then
  add_messages(-vanished)
  refresh_row(ARGV[7])
end
local oldest = redis.call('ZRANGE', EXPIRY, 0, 0, 'WITHSCORES')[2] or ''
return {redis.call('ZCARD', timeline) - pending, redis.call('HGETALL', SETTINGS), rows, now,
  oldest, window, pending, info_row(ARGV[7]), newest_seq(ARGV[7])}
