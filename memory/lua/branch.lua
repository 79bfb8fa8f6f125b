-- Show another alternative of a fork point (common.lua "branches") in one atomic step: the
-- shown tail after the fork's parent is stored as its alternative and hidden, the chosen one
-- moves back into the timeline, and a summary checkpoint past the parent goes (it covers
-- messages no longer shown). Refused while a reply of the conversation streams (it would land
-- in the branch no longer shown), when the conversation's newest seq is not the one the page
-- showed, and when the tail is longer than ARGV[6]. Run twice with the same ARGV[5], it
-- switches once (common.lua `replayed`).
-- KEYS: the user's keys (common.lua)
-- ARGV: conversation id, parent seq, alternative (1..count), expected newest seq ('' = no
--       check), operation id, most messages moved, prune batch
-- Returns {'ok', newest seq} / {'stale', newest seq} / {'busy'} / {'prune'} / {'gone'} (no
--   such fork point or alternative) / {'too_many', found}
local cid, parent, wanted, expect, op = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local most = tonumber(ARGV[6])
local done = replayed(op)
if done then
  return {'ok', tonumber(done)}
end
local newest = stale(cid, expect)
if newest then
  return {'stale', newest}
end
local now = now_ms()
local reply = MEM_INDEX .. ':reply:' .. MEM_TAG .. ':' .. cid
if redis.call('HGET', reply, 'state') == 'streaming'
    and tonumber(redis.call('HGET', reply, 'lease') or '0') > now then
  return {'busy'}
end
if begin(now, tonumber(ARGV[7])) > 0 then
  return {'prune'}
end
local fork = fork_of(cid, parent)
if not fork or not wanted or wanted < 1 or wanted > fork[2] then
  return {'gone'}
end
if wanted ~= fork[1] then
  local tail = redis.call('ZRANGEBYSCORE', timeline_of(cid), '(' .. parent, '+inf', 'LIMIT', 0,
    most + 1)
  if #tail > most then
    return {'too_many', #tail}
  end
  local alts = alts_of(cid)
  redis.call('HSET', alts, parent .. ':' .. fork[1], cjson.encode(tail))
  hide_keys(cid, tail)
  local stored = redis.call('HGET', alts, parent .. ':' .. wanted)
  local head = 0
  if stored then
    head = show_keys(cid, cjson.decode(stored))
    redis.call('HDEL', alts, parent .. ':' .. wanted)
  end
  set_fork(cid, parent, wanted, fork[2], head)
  drop_summary_past(cid, parent)
  refresh_row(cid)
end
newest = newest_seq(cid)
record_removal(op, newest)
return {'ok', newest}
