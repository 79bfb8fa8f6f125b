-- A user's conversations, in one round trip (legacy data adopted first).
-- KEYS: the user's keys (common.lua)
-- ARGV: mode, limit, prune batch, start
--   'page': up to `limit` pinned (most recently pinned first) and up to `limit` unpinned
--           (most recently active first) info rows, and the number of conversations:
--           {'ok', total, {row, ...}, {row, ...}}, or {'pending'} while expired messages
--           remain to be pruned (the caller prunes and asks again)
--   'ids':  up to `limit` conversation ids from position `start` (oldest activity first)
local mode, limit = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
if mode == 'ids' then
  adopt(now)
  return redis.call('ZRANGE', CONVS, tonumber(ARGV[4]), tonumber(ARGV[4]) + limit - 1)
end
if begin(now, tonumber(ARGV[3])) > 0 then
  return {'pending'}
end
local pinned, recent = {}, {}
if limit > 0 then
  for _, cid in ipairs(redis.call('ZREVRANGE', PINNED, 0, limit - 1)) do
    local row = info_row(cid, nil, 1)
    if row then
      pinned[#pinned + 1] = row
    end
  end
  -- Enough of the most recent to fill a page after skipping every pinned one.
  local pins = redis.call('ZCARD', PINNED)
  local ranked = redis.call('ZREVRANGE', CONVS, 0, limit + pins - 1, 'WITHSCORES')
  for i = 1, #ranked, 2 do
    if #recent == limit then
      break
    end
    if pins == 0 or not redis.call('ZSCORE', PINNED, ranked[i]) then
      local row = info_row(ranked[i], ranked[i + 1], 0)
      if row then
        recent[#recent + 1] = row
      end
    end
  end
end
return {'ok', redis.call('ZCARD', CONVS), pinned, recent}
