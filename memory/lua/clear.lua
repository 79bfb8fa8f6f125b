-- Delete, oldest first, up to ARGV[2] messages of one conversation created at or before
-- ARGV[1] (ms; '' = now), and its summary checkpoint. Called in a loop until it reports done,
-- so no call blocks Redis for long and messages written after the clear began stay. The
-- user's settings (instruction, retention, usage) stay. Mode 'delete' removes every message
-- whatever its time and, once the timeline is empty, the conversation itself: record, list,
-- row and pin entries. The first call of a loop may name the newest seq the page showed
-- (ARGV[5]): when the conversation's newest is another, nothing is removed. The messages of
-- branches not shown go first (whatever their time), then the fork points. Its operation id
-- (ARGV[6]) makes a re-sent first call go on with the first run's cutoff (common.lua).
-- KEYS: the user's keys (common.lua)
-- ARGV: cutoff, batch, conversation id, mode ('clear' or 'delete'), expected newest seq
--       ('' = no check), operation id ('' = none)
-- Returns {deleted, more (0/1), cutoff_ms} or {-1, newest seq now, 0} when stale
local cid, deleting, expect, op = ARGV[3], ARGV[4] == 'delete', ARGV[5], ARGV[6]
local timeline = timeline_of(cid)
local now = now_ms()
local cutoff = now
if ARGV[1] ~= '' then
  cutoff = tonumber(ARGV[1])
end
local done = replayed(op)
if done then
  cutoff = tonumber(done)
else
  local newest = stale(cid, expect)
  if newest then
    return {-1, newest, 0}
  end
  record_removal(op, cutoff)
end
local batch = tonumber(ARGV[2])
redis.call('DEL', summary_of(cid))
if begin(now, batch) > 0 then
  return {0, 1, cutoff}
end
-- Messages of branches not shown (common.lua "branches") go first, all of them, and then the
-- conversation's fork points.
local hidden = redis.call('ZRANGE', hidden_of(cid), 0, batch - 1)
if #hidden > 0 then
  local freed_hidden, present = 0, {}
  for _, key in ipairs(hidden) do
    if redis.call('EXISTS', key) == 1 then
      local bytes = message_bytes(key)
      freed_hidden = freed_hidden + bytes
      forget_expiry(cid, key, bytes)
      present[#present + 1] = key
    end
  end
  redis.call('ZREM', hidden_of(cid), unpack(hidden))
  if #present > 0 then
    redis.call('DEL', unpack(present))
  end
  forget_sources(hidden, false)
  add_bytes(-freed_hidden)
  add_messages(-#hidden)
  return {#present, 1, cutoff}
end
drop_branches(cid)
local members = redis.call('ZRANGE', timeline, 0, batch - 1)
local gone, deleted, freed, newer = {}, {}, 0, false
for _, key in ipairs(members) do
  local created = created_ms_of(key)
  if created and created > cutoff and not deleting then
    newer = true
    break
  end
  gone[#gone + 1] = key
  if created then
    local bytes = message_bytes(key)
    freed = freed + bytes
    deleted[#deleted + 1] = key
    forget_expiry(cid, key, bytes)
  end
end
if #gone > 0 then
  redis.call('ZREM', timeline, unpack(gone))
end
if #deleted > 0 then
  redis.call('DEL', unpack(deleted))
end
forget_sources(gone, false)
add_bytes(-freed)
add_messages(-#gone)
local more = 0
if not newer and #members == batch then
  more = 1
end
if deleting and more == 0 then
  redis.call('DEL', record_of(cid), timeline)
  redis.call('ZREM', CONVS, cid)
  redis.call('ZREM', PINNED, cid)
end
if #gone > 0 or (deleting and more == 0) then
  refresh_row(cid)
end
refresh_head()
return {#deleted, more, cutoff}
