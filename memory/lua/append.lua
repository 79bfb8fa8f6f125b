-- Append one message atomically: next sequence number, the message hash (a redisvl
-- MessageHistory document), its place in the user's timeline, the user's retention policy
-- and usage totals. KEYS share the user's hash tag, so this also runs on a clustered Redis.
-- KEYS: settings, timeline, expiry, message
-- ARGV: role, content, session_tag, token_count, token_encoding, metadata, prompt_tokens,
--       completion_tokens, user_id, entry_id
local settings, timeline, expiry, message = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local seq = redis.call('HINCRBY', settings, 'seq', 1)
redis.call('HSETNX', settings, 'user_id', ARGV[9])
local fields = {
  'entry_id', ARGV[10], 'role', ARGV[1], 'content', ARGV[2], 'session_tag', ARGV[3],
  'timestamp', seq, 'created_at', string.format('%.3f', now_ms / 1000),
  'token_count', ARGV[4], 'token_encoding', ARGV[5],
}
if ARGV[6] ~= '' then
  fields[#fields + 1] = 'metadata'
  fields[#fields + 1] = ARGV[6]
end
redis.call('HSET', message, unpack(fields))
redis.call('ZADD', timeline, seq, message)
local ttl = redis.call('HGET', settings, 'ttl')
if ttl then
  local expire_at = now_ms + tonumber(ttl) * 1000
  redis.call('PEXPIREAT', message, expire_at)
  redis.call('ZADD', expiry, expire_at, message)
end
if ARGV[7] ~= '' then
  redis.call('HINCRBY', settings, 'usage_prompt_tokens', ARGV[7])
  redis.call('HINCRBY', settings, 'usage_completion_tokens', ARGV[8])
  redis.call('HINCRBY', settings, 'usage_replies', 1)
end
return {seq, now_ms}
