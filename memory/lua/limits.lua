-- Per-user limits on model requests (memory/limits.py), shared by limits_acquire.lua,
-- limits_settle.lua and the turn scripts: a request log (sorted set of request ids scored by
-- ms, the last minute) and a token budget (hash: UTC `day`, tokens `used`, and
-- `held:<request id>` = the tokens each admitted, unsettled request reserved). A limit of 0
-- means none. A re-sent script finds its request already held or already settled and
-- changes nothing more.
local MINUTE_MS, DAY_MS = 60000, 86400000

-- Whether a request that may use `estimate` tokens is admitted now:
-- {verdict ('ok', 'requests' or 'tokens'), used (requests or tokens), resets_in_ms, day}.
local function limit_verdict(log, budget, per_minute, per_day, estimate, now)
  local day = math.floor(now / DAY_MS)
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - MINUTE_MS)
  local requests = redis.call('ZCARD', log)
  if per_minute > 0 and requests >= per_minute then
    local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
    return {'requests', requests, tonumber(oldest[2]) + MINUTE_MS - now, day}
  end
  local used = 0
  local stored = redis.call('HMGET', budget, 'day', 'used')
  if tonumber(stored[1]) == day then
    used = tonumber(stored[2]) or 0
  end
  if per_day > 0 and used + estimate > per_day then
    return {'tokens', used, (day + 1) * DAY_MS - now, day}
  end
  return {'ok', used, 0, day}
end

-- Record an admitted request (after limit_verdict said 'ok'): its place in the minute and
-- its reservation. A new day starts the budget afresh. Returns the tokens used today.
local function hold_request(log, budget, verdict, estimate, request_id, now)
  local used, day = verdict[2] + estimate, verdict[4]
  if tonumber(redis.call('HGET', budget, 'day')) ~= day then
    redis.call('DEL', budget)
  end
  redis.call('ZADD', log, now, request_id)
  redis.call('PEXPIRE', log, MINUTE_MS)
  redis.call('HSET', budget, 'day', day, 'used', used, 'held:' .. request_id, estimate)
  redis.call('PEXPIREAT', budget, (day + 1) * DAY_MS + MINUTE_MS)
  return used
end

-- The tokens request `request_id` holds, or false once settled (or never held here).
local function held_tokens(budget, request_id)
  local held = redis.call('HGET', budget, 'held:' .. request_id)
  return held and tonumber(held)
end

-- Replace a request's reservation by what it really used (never below zero), once: a request
-- no longer held is left alone. A request that straddles midnight UTC stays counted on the
-- day it was admitted. `reserved` is what a reservation held without a `held:` field (one
-- made before they existed, request id ''). Returns the tokens used today, or -1.
local function settle_request(budget, day, request_id, used_tokens, reserved)
  if request_id ~= '' then
    reserved = held_tokens(budget, request_id)
    if not reserved then
      return -1
    end
    redis.call('HDEL', budget, 'held:' .. request_id)
  end
  if tonumber(redis.call('HGET', budget, 'day')) ~= tonumber(day) then
    return -1
  end
  local used = redis.call('HINCRBY', budget, 'used', used_tokens - reserved)
  if used < 0 then
    redis.call('HSET', budget, 'used', 0)
    used = 0
  end
  return used
end
