-- Change one conversation's record, or finish erasing a user.
-- KEYS: the user's keys (common.lua)
-- ARGV: op, conversation id, value, title source
--   'rename': title := value, source 'user'
--   'auto':   title := value with source ARGV[4], only when the current source is '' or
--             ('words' and the new one is 'model'): an automatic title never replaces the
--             user's
--   'pin':    value '1' pins (scored by now), '0' unpins
--   'created': created_ms := value (an import keeping the conversation's own creation time,
--             which may be before its first message's: one cleared and continued)
--   'erase':  once the user has no conversation left, delete up to ARGV[3] stray message
--             keys still in the expiry set, then (none left) every remaining key of the user, memories included
-- Returns {changed (0/1), the conversation's list row (false when it has no record)};
--   'erase' returns {done (0/1)}
local op, cid = ARGV[1], ARGV[2]
if op == 'erase' then
  if redis.call('ZCARD', CONVS) > 0 or redis.call('EXISTS', TIMELINE_BASE) == 1 then
    return {0}
  end
  local stray = redis.call('ZRANGE', EXPIRY, 0, tonumber(ARGV[3]) - 1)
  if #stray > 0 then
    local keys = {}
    for i, member in ipairs(stray) do
      local _, _, key = parse_member(member)
      keys[i] = key
    end
    redis.call('DEL', unpack(keys))
    redis.call('ZREM', EXPIRY, unpack(stray))
    return {0}
  end
  for _, id in ipairs(redis.call('ZRANGE', MEMORIES, 0, -1)) do  -- capped per user
    redis.call('DEL', memory_key(id))
  end
  redis.call('DEL', SETTINGS, EXPIRY, CONVS, PINNED, SUMMARY_BASE, REQUEST_LOG, TOKEN_BUDGET,
    ROWS, LISTING, MEMORIES, SOURCES)
  return {1}
end
adopt(now_ms())
local record = record_of(cid)
if redis.call('EXISTS', record) == 0 then
  return {0, false}
end
local changed = 1
if op == 'rename' then
  redis.call('HSET', record, 'title', ARGV[3], 'title_source', 'user')
elseif op == 'auto' then
  local current = redis.call('HGET', record, 'title_source') or ''
  if current == '' or (current == 'words' and ARGV[4] == 'model') then
    redis.call('HSET', record, 'title', ARGV[3], 'title_source', ARGV[4])
  else
    changed = 0
  end
elseif op == 'created' then
  redis.call('HSET', record, 'created_ms', ARGV[3])
elseif ARGV[3] == '1' then
  -- The newest pin goes first even when two land in the same millisecond (whole ms, so the
  -- order survives LISTING's far larger pinned ranks).
  local pinned_at = now_ms()
  local newest = tonumber(redis.call('ZREVRANGE', PINNED, 0, 0, 'WITHSCORES')[2] or '0')
  if newest >= pinned_at and redis.call('ZSCORE', PINNED, cid) == false then
    pinned_at = math.floor(newest) + 1
  end
  redis.call('ZADD', PINNED, pinned_at, cid)
else
  redis.call('ZREM', PINNED, cid)
end
if changed == 1 then
  refresh_row(cid)
end
return {changed, row_of(cid)}
