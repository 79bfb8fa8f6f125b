-- Store one message's vector in its own hash, in one embedding space, only while the message
-- exists (a message deleted or expired since it was read is not brought back), and drop its
-- vectors of every other space (a model change re-embeds, never mixes). Safe to run twice.
-- KEYS: message
-- ARGV: vector field, vector bytes
-- Returns 1 when stored, 0 when the message is gone.
local message = KEYS[1]
if redis.call('EXISTS', message) == 0 then
  return 0
end
local stale = {}
for _, name in ipairs(redis.call('HKEYS', message)) do
  if string.sub(name, 1, 4) == 'vec_' and name ~= ARGV[1] then
    stale[#stale + 1] = name
  end
end
if #stale > 0 then
  redis.call('HDEL', message, unpack(stale))
end
redis.call('HSET', message, ARGV[1], ARGV[2])
return 1
