-- A user's conversations, in one round trip (legacy data adopted first).
-- KEYS: the user's keys (common.lua)
-- ARGV: mode, limit, prune batch, start
--   'page': up to `limit` pinned (most recently pinned first) and up to `limit` unpinned
--           (most recently active first) conversations, and the number of conversations:
--           {'ok', total, {row, ...}, {row, ...}} with each row as ROWS holds it (common.lua
--           refresh_row), or {'pending'} while expired messages remain to be pruned (the
--           caller prunes and asks again). A constant number of calls whatever the number of
--           conversations: a page of rows is one HMGET; a row missing (data from an earlier
--           release) is built once.
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
local total = redis.call('ZCARD', CONVS)
if limit <= 0 or total == 0 then
  return {'ok', total, {}, {}}
end

local function rows_of(ids)
  if #ids == 0 then
    return ids
  end
  local rows = redis.call('HMGET', ROWS, unpack(ids))
  for i = 1, #ids do
    if not rows[i] then
      local out = {}
      for j, cid in ipairs(ids) do
        out[#out + 1] = rows[j] or refresh_row(cid) or nil
      end
      return out
    end
  end
  return rows
end

local pins = redis.call('ZREVRANGE', PINNED, 0, limit - 1)
local pin_count = redis.call('ZCARD', PINNED)
-- Enough of the most recent to fill a page after skipping every pinned one.
local ranked = redis.call('ZREVRANGE', CONVS, 0, limit + pin_count - 1)
local recent = ranked
if pin_count > 0 then
  recent = {}
  local flags = redis.call('ZMSCORE', PINNED, unpack(ranked))
  for i, cid in ipairs(ranked) do
    if #recent == limit then
      break
    end
    if not flags[i] then
      recent[#recent + 1] = cid
    end
  end
end
return {'ok', total, rows_of(pins), rows_of(recent)}
