-- Store one message's vector in its own hash, in one embedding space, only while the message
-- exists (a message deleted or expired since it was read is not brought back), and drop its
-- vectors of every other space (a model change re-embeds, never mixes). Safe to run twice.
-- KEYS: message
-- ARGV: vector field, space tag field, vector bytes
-- Returns 1 when stored, 0 when the message is gone.
local message = KEYS[1]
if redis.call('EXISTS', message) == 0 then
  return 0
end
local stale = {}
for _, name in ipairs(redis.call('HKEYS', message)) do
  local is_space = string.sub(name, 1, 4) == 'vec_' or string.sub(name, 1, 4) == 'emb_'
  if is_space and name ~= ARGV[1] and name ~= ARGV[2] then
    stale[#stale + 1] = name
  end
end
if #stale > 0 then
  redis.call('HDEL', message, unpack(stale))
end
redis.call('HSET', message, ARGV[1], ARGV[3], ARGV[2], '1')
return 1
