-- Append one message atomically, at most once per message id: next sequence number, the
-- message hash (a redisvl MessageHistory document), its place in the user's timeline, the
-- user's retention policy, byte total and usage totals. A message key already in the
-- timeline (a retried or resent write) changes nothing and returns the stored seq.
-- KEYS share the user's hash tag, so this also runs on a clustered Redis.
-- KEYS: settings, timeline, expiry, message
-- ARGV: role, content, session_tag, token_count, token_encoding, metadata, prompt_tokens,
--       completion_tokens, user_id, entry_id, max_messages, max_bytes, prune_batch
-- Returns {'stored', seq, created_ms, duplicate (0/1), registered (0/1)}
--      or {'limit', name, current, maximum} or {'prune'} (expired messages must go first)
local settings, timeline, expiry, message = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = now_ms()
local existing = redis.call('ZSCORE', timeline, message)
if existing then
  local created = redis.call('HGET', message, 'created_at')
  local created_ms = created and math.floor(tonumber(created) * 1000 + 0.5) or now
  return {'stored', tonumber(existing), created_ms, 1, 1}
end
local pending = prune(settings, timeline, expiry, now, tonumber(ARGV[13]))
local count = redis.call('ZCARD', timeline) - pending
if count >= tonumber(ARGV[11]) then
  return {'limit', 'MAX_MESSAGES_PER_USER', count, tonumber(ARGV[11])}
end
local size = #ARGV[2] + #ARGV[6]
local stored = tonumber(redis.call('HGET', settings, 'stored_bytes') or '0')
if stored + size > tonumber(ARGV[12]) then
  if pending > 0 then
    return {'prune'}
  end
  return {'limit', 'MAX_BYTES_PER_USER', stored, tonumber(ARGV[12])}
end
local seq = redis.call('HINCRBY', settings, 'seq', 1)
redis.call('HSETNX', settings, 'user_id', ARGV[9])
local fields = {
  'entry_id', ARGV[10], 'role', ARGV[1], 'content', ARGV[2], 'session_tag', ARGV[3],
  'timestamp', seq, 'created_at', string.format('%.3f', now / 1000),
  'token_count', ARGV[4], 'token_encoding', ARGV[5],
}
if ARGV[6] ~= '' then
  fields[#fields + 1] = 'metadata'
  fields[#fields + 1] = ARGV[6]
end
redis.call('HSET', message, unpack(fields))
redis.call('ZADD', timeline, seq, message)
add_bytes(settings, size)
local ttl = redis.call('HGET', settings, 'ttl')
if ttl then
  local expire_at = now + tonumber(ttl) * 1000
  redis.call('PEXPIREAT', message, expire_at)
  redis.call('ZADD', expiry, expire_at, expiry_member(message, size))
end
if ARGV[7] ~= '' then
  redis.call('HINCRBY', settings, 'usage_prompt_tokens', ARGV[7])
  redis.call('HINCRBY', settings, 'usage_completion_tokens', ARGV[8])
  redis.call('HINCRBY', settings, 'usage_replies', 1)
end
local registered = redis.call('HEXISTS', settings, 'registered')
return {'stored', seq, now, 0, registered}
