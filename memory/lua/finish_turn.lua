-- Finish a chat turn in one atomic step (memory/store.py `finish_turn`): settle the request's
-- reservation to what it used (once: limits.lua) and store the reply (once per message id;
-- common.lua `store_message`). The settling stands even when the reply cannot be stored (the
-- model has answered). Loaded with `#!lua`: refused whole when Redis is full or read-only.
-- KEYS: the user's keys (common.lua), the reply's message key
-- ARGV: conversation id, request id, day of the reservation, tokens used, tokens reserved,
--       prune batch, then the reply (common.lua `message_at`; none, e.g. the model failed:
--       absent)
-- Returns {'settled'} (no reply) or what append.lua returns: {'stored', seq, created_ms,
--   duplicate (0/1), registered (0/1)} / {'limit', name, current, maximum} / {'prune'}
local cid, reply = ARGV[1], KEYS[12]
settle_request(TOKEN_BUDGET, ARGV[3], ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5]))
if #ARGV < 7 then
  return {'settled'}
end
local now = now_ms()
local existing = stored_seq(cid, reply)
if existing then
  return {'stored', existing, created_ms_of(reply) or now, 1,
    redis.call('HEXISTS', SETTINGS, 'registered')}
end
local m = message_at(7)
local refused = no_room(cid, m, begin(now, tonumber(ARGV[6])), 0, 0)
if refused then
  return refused
end
local seq, created = store_message(cid, reply, m, now)
return {'stored', seq, created, 0, redis.call('HEXISTS', SETTINGS, 'registered')}
