-- Append one message to one conversation atomically, at most once per message id: next
-- sequence number (per user), the message hash (a redisvl MessageHistory document), its place
-- in the conversation's timeline, the conversation's record and list row (created with the first message;
-- titled by the first prompt's words until a better title comes) and last-active time, the
-- user's retention policy, message and byte totals and usage totals. A message key already
-- stored (a retried or resent write) changes nothing and returns the stored seq.
-- KEYS: the user's keys (common.lua), message
-- ARGV: role, content, session_tag, token_count, token_encoding, metadata, prompt_tokens,
--       completion_tokens, user_id, entry_id, max_messages, max_bytes, prune_batch,
--       conversation id, user tag, created_ms ('' = now; set only by imports)
-- Returns {'stored', seq, created_ms, duplicate (0/1), registered (0/1)}
--      or {'limit', name, current, maximum} (name 'conversations': the cap on those)
--      or {'prune'} (expired messages must go first)
local message, cid = KEYS[12], ARGV[14]
local timeline = timeline_of(cid)
local now = now_ms()
local existing = redis.call('ZSCORE', timeline, message)
if not existing and redis.call('EXISTS', message) == 1 then
  existing = redis.call('HGET', message, 'timestamp')
end
if existing then
  -- A resend after an unknown outcome: the user may still be missing from the registry.
  return {'stored', tonumber(existing), created_ms_of(message) or now, 1,
    redis.call('HEXISTS', SETTINGS, 'registered')}
end
local pending = begin(now, tonumber(ARGV[13]))
local count = tonumber(redis.call('HGET', SETTINGS, 'stored_messages') or '0') - pending
if count >= tonumber(ARGV[11]) then
  return {'limit', 'MAX_MESSAGES_PER_USER', count, tonumber(ARGV[11])}
end
local size = #ARGV[2] + #ARGV[6]
local stored = tonumber(redis.call('HGET', SETTINGS, 'stored_bytes') or '0')
if stored + size > tonumber(ARGV[12]) then
  if pending > 0 then
    return {'prune'}
  end
  return {'limit', 'MAX_BYTES_PER_USER', stored, tonumber(ARGV[12])}
end
-- A new conversation counts against the same cap: each holds at least a message's worth
-- (its record and list row), so empty ones cannot pile up past it.
local conversations = redis.call('ZCARD', CONVS)
if conversations >= tonumber(ARGV[11]) and redis.call('EXISTS', record_of(cid)) == 0 then
  return {'limit', 'conversations', conversations, tonumber(ARGV[11])}
end
local created = now
if ARGV[16] ~= '' then
  created = tonumber(ARGV[16])
end
local seq = redis.call('HINCRBY', SETTINGS, 'seq', 1)
redis.call('HSETNX', SETTINGS, 'user_id', ARGV[9])
local fields = {
  'entry_id', ARGV[10], 'role', ARGV[1], 'content', ARGV[2], 'session_tag', ARGV[3],
  'user_tag', ARGV[15], 'timestamp', seq, 'created_at', string.format('%.3f', created / 1000),
  'token_count', ARGV[4], 'token_encoding', ARGV[5],
}
if ARGV[6] ~= '' then
  fields[#fields + 1] = 'metadata'
  fields[#fields + 1] = ARGV[6]
end
redis.call('HSET', message, unpack(fields))
redis.call('ZADD', timeline, seq, message)
local record = record_of(cid)
if redis.call('EXISTS', record) == 0 then
  redis.call('HSET', record, 'title', '', 'title_source', '', 'created_ms', created)
end
if ARGV[1] == 'user' and (redis.call('HGET', record, 'title_source') or '') == '' then
  redis.call('HSET', record, 'title', first_words(ARGV[2]), 'title_source', 'words')
end
-- Last activity orders the list: a live write lands strictly after the newest one, so two
-- writes in the same millisecond keep their order (imports keep their own, older, times).
local active = created
if ARGV[16] == '' then
  local newest = tonumber(redis.call('ZREVRANGE', CONVS, 0, 0, 'WITHSCORES')[2] or '0')
  -- (Only a tie of live writes: an imported time ahead of the clock is not followed.)
  if newest >= active and newest < active + 1000 then
    active = newest + 0.001
  end
end
redis.call('ZADD', CONVS, 'GT', active, cid)
add_bytes(size)
add_messages(1)
local ttl = redis.call('HGET', SETTINGS, 'ttl')
if ttl then
  local expire_at = now + tonumber(ttl) * 1000
  redis.call('PEXPIREAT', message, expire_at)
  redis.call('ZADD', EXPIRY, expire_at, expiry_member(cid, message, size))
end
refresh_row(cid)
refresh_head()
if ARGV[7] ~= '' then
  redis.call('HINCRBY', SETTINGS, 'usage_prompt_tokens', ARGV[7])
  redis.call('HINCRBY', SETTINGS, 'usage_completion_tokens', ARGV[8])
  redis.call('HINCRBY', SETTINGS, 'usage_replies', 1)
  -- Replies whose numbers are the app's estimate (the server reported none), so a total
  -- holding any can be shown as an estimate (Usage.as_metadata writes the flag so).
  if string.find(ARGV[6], '"estimated": true', 1, true) then
    redis.call('HINCRBY', SETTINGS, 'usage_estimated_replies', 1)
  end
end
local registered = redis.call('HEXISTS', SETTINGS, 'registered')
return {'stored', seq, created, 0, registered}
