-- Everything a page render reads, in one call: the open conversation (common.lua
-- `read_conversation`, the user's stored window size), a page of the user's list and the
-- summary state.
-- KEYS: the user's keys (common.lua)
-- ARGV: conversation id ('' = the most recently active one, or ARGV[2] when the user has
--       none), a fresh conversation id, page size, default window size, prune batch, list
--       limit
-- Returns {the conversation id read, read_conversation's reply, the list page (what
--   ZREVRANGE LISTING 0 limit returns: the head, then the rows; false when expired messages
--   are still pending or the listing needs rebuilding: the caller reads the list through the
--   list script), summary on ('1') or not, the checkpoint (flat HGETALL)}
local cid = ARGV[1]
if cid == '' then
  adopt(now_ms())
  cid = redis.call('ZREVRANGE', CONVS, 0, 0)[1] or ARGV[2]
end
local view = read_conversation(cid, 'recent', tonumber(ARGV[3]), 0, window_size('', ARGV[4]),
  tonumber(ARGV[5]))
local page = false
if view[7] == 0 then
  local top = redis.call('ZREVRANGE', LISTING, 0, tonumber(ARGV[6]))
  if top[1] and string.sub(top[1], 1, 2) == '#|' then
    page = top
  elseif redis.call('ZCARD', CONVS) == 0 then
    page = {}
  end
end
return {cid, view, page, redis.call('HGET', SETTINGS, 'summary_enabled') or '',
  redis.call('HGETALL', summary_of(cid))}
