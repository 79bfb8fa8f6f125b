-- A user's conversations (legacy data adopted first), for when LISTING's head cannot vouch for
-- a page on its own (memory/store.py reads a page with one ZREVRANGE while it can).
-- KEYS: the user's keys (common.lua)
-- ARGV: mode, limit, batch, start
--   'page': {'ok', conversations, page}, page being what ZREVRANGE LISTING 0 limit returns (the
--           head, then up to `limit` rows; common.lua refresh_row / refresh_head), once no
--           expired message remains to be pruned ({'pending'}: the caller prunes and asks
--           again) and LISTING has a row for every conversation. When it has not (data from
--           an earlier release, or out of step), it is rebuilt `batch` conversations a call
--           from position `start`: {'rebuild', next start} until done.
--   'ids':  up to `limit` conversation ids from position `start` (oldest activity first)
local mode, limit, batch, start = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
if mode == 'ids' then
  adopt(now)
  return redis.call('ZRANGE', CONVS, start, start + limit - 1)
end
if begin(now, batch) > 0 then
  return {'pending'}
end
local total = redis.call('ZCARD', CONVS)
if total == 0 then
  return {'ok', 0, {}}
end
if redis.call('ZREVRANGE', LISTING, 0, 0, 'WITHSCORES')[2] ~= 'inf' then
  if start == 0 then
    redis.call('DEL', LISTING)
  end
  local ids = redis.call('ZRANGE', CONVS, start, start + batch - 1)
  for _, cid in ipairs(ids) do
    refresh_row(cid)
  end
  if #ids == batch then
    return {'rebuild', start + batch}
  end
  refresh_head()
end
return {'ok', total, redis.call('ZREVRANGE', LISTING, 0, limit)}
