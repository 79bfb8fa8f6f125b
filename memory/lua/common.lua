-- Shared by every per-user script (prepended to each by memory/store.py).
-- A user's expiry set holds '<bytes>|<message key>' scored by the expiry time in ms, so
-- pruning an expired message knows how many bytes to take off the user's total even after
-- Redis has already dropped the hash.
local function now_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end

local function message_bytes(key)
  return redis.call('HSTRLEN', key, 'content') + redis.call('HSTRLEN', key, 'metadata')
end

local function expiry_member(key, bytes)
  return bytes .. '|' .. key
end

local function add_bytes(settings, delta)
  if delta ~= 0 and redis.call('HINCRBY', settings, 'stored_bytes', delta) < 0 then
    redis.call('HSET', settings, 'stored_bytes', 0)
  end
end

-- Remove up to `batch` messages whose retention ran out; returns how many expired remain.
local function prune(settings, timeline, expiry, now, batch)
  local expired = redis.call('ZRANGEBYSCORE', expiry, '-inf', now, 'LIMIT', 0, batch)
  if #expired == 0 then
    return 0
  end
  local keys, freed = {}, 0
  for i, member in ipairs(expired) do
    local bytes, key = string.match(member, '^(%d+)|(.+)$')
    if key then
      freed = freed + tonumber(bytes)
      keys[i] = key
    else
      keys[i] = member
    end
  end
  redis.call('ZREM', timeline, unpack(keys))
  redis.call('DEL', unpack(keys))
  redis.call('ZREM', expiry, unpack(expired))
  add_bytes(settings, -freed)
  return redis.call('ZCOUNT', expiry, '-inf', now)
end
