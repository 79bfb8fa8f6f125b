-- Delete, oldest first, up to ARGV[2] messages of one user created at or before ARGV[1] (ms;
-- '' = now). Called in a loop until it reports done, so no call blocks Redis for long and
-- messages written after the clear began stay. Settings (instruction, retention, usage) stay.
-- KEYS: settings, timeline, expiry
-- Returns {deleted, more (0/1), cutoff_ms}
local settings, timeline, expiry = KEYS[1], KEYS[2], KEYS[3]
local now = now_ms()
local cutoff = now
if ARGV[1] ~= '' then
  cutoff = tonumber(ARGV[1])
end
local batch = tonumber(ARGV[2])
if prune(settings, timeline, expiry, now, batch) > 0 then
  return {0, 1, cutoff}
end
local members = redis.call('ZRANGE', timeline, 0, batch - 1)
local gone, deleted, expiring, freed, newer = {}, {}, {}, 0, false
for _, key in ipairs(members) do
  local created = redis.call('HGET', key, 'created_at')
  if created and math.floor(tonumber(created) * 1000 + 0.5) > cutoff then
    newer = true
    break
  end
  gone[#gone + 1] = key
  if created then
    local bytes = message_bytes(key)
    freed = freed + bytes
    deleted[#deleted + 1] = key
    expiring[#expiring + 1] = expiry_member(key, bytes)
  end
end
if #gone > 0 then
  redis.call('ZREM', timeline, unpack(gone))
end
if #deleted > 0 then
  redis.call('DEL', unpack(deleted))
  redis.call('ZREM', expiry, unpack(expiring))
end
add_bytes(settings, -freed)
local more = 0
if not newer and #members == batch then
  more = 1
end
return {#deleted, more, cutoff}
