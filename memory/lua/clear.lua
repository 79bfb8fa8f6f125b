-- Delete every message of one user; their settings (instruction, retention, usage) stay.
-- KEYS: timeline, expiry
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for i = 1, #members, 1000 do
  redis.call('DEL', unpack(members, i, math.min(i + 999, #members)))
end
redis.call('DEL', KEYS[1], KEYS[2])
return #members
