-- Remove the tail of one conversation (its messages with seq >= ARGV[2]) in one atomic step:
-- editing the last prompt removes prompt and reply, regenerating removes the reply. Refuses
-- to remove more than ARGV[3] messages, so a stale seq cannot wipe a conversation.
-- KEYS: the user's keys (common.lua)
-- ARGV: conversation id, from seq, most it may remove, prune batch
-- Returns {removed} or {-1} (expired messages must be pruned first) or {-2, found}
local cid = ARGV[1]
local timeline = timeline_of(cid)
local most = tonumber(ARGV[3])
if begin(now_ms(), tonumber(ARGV[4])) > 0 then
  return {-1}
end
local keys = redis.call('ZRANGEBYSCORE', timeline, ARGV[2], '+inf', 'LIMIT', 0, most + 1)
if #keys > most then
  return {-2, #keys}
end
local freed = 0
for _, key in ipairs(keys) do
  local bytes = message_bytes(key)
  freed = freed + bytes
  forget_expiry(cid, key, bytes)
end
if #keys > 0 then
  redis.call('ZREM', timeline, unpack(keys))
  redis.call('DEL', unpack(keys))
  refresh_row(cid)
  refresh_head()
end
add_bytes(-freed)
add_messages(-#keys)
return {#keys}
