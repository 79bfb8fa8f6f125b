-- Append one message to one conversation atomically, at most once per message id (common.lua
-- `store_message` says what it writes). A message key already stored (a retried or resent
-- write) changes nothing and returns the stored seq.
-- KEYS: the user's keys (common.lua), message
-- ARGV: conversation id, prune batch, then the message (common.lua `message_at`)
-- Returns {'stored', seq, created_ms, duplicate (0/1), registered (0/1)}
--      or {'limit', name, current, maximum} (name 'conversations': the cap on those)
--      or {'prune'} (expired messages must go first)
local message, cid = KEYS[12], ARGV[1]
local now = now_ms()
local existing = stored_seq(cid, message)
if existing then
  return {'stored', existing, created_ms_of(message) or now, 1,
    redis.call('HEXISTS', SETTINGS, 'registered')}
end
local m = message_at(3)
local refused = no_room(cid, m, begin(now, tonumber(ARGV[2])), 0, 0)
if refused then
  return refused
end
local seq, created = store_message(cid, message, m, now)
return {'stored', seq, created, 0, redis.call('HEXISTS', SETTINGS, 'registered')}
