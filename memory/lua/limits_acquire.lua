#!lua
-- Admit one model request for one user, or say which limit refuses it and when it resets.
-- The `#!lua` line makes Redis refuse the whole script up front when it is out of memory or
-- read-only, instead of letting it write part way.
-- Both limits are checked and, when both allow it, both recorded, in one atomic step: any
-- number of app instances and threads see exactly the limit. A limit of 0 means none.
-- KEYS: request log (sorted set of request ids scored by ms), token budget (hash: day, used)
-- ARGV: requests per minute, tokens per day, tokens this request may use, request id
-- Returns {verdict, used, resets_in_ms, day}: verdict is 'ok', 'requests' or 'tokens'.
local log, budget = KEYS[1], KEYS[2]
local per_minute, per_day = tonumber(ARGV[1]), tonumber(ARGV[2])
local estimate, request_id = tonumber(ARGV[3]), ARGV[4]
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local minute, day_ms = 60000, 86400000
local day = math.floor(now_ms / day_ms)
local next_day_ms = (day + 1) * day_ms

redis.call('ZREMRANGEBYSCORE', log, '-inf', now_ms - minute)
local requests = redis.call('ZCARD', log)
if per_minute > 0 and requests >= per_minute then
  local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
  return {'requests', requests, tonumber(oldest[2]) + minute - now_ms, day}
end

local used = 0
local stored = redis.call('HMGET', budget, 'day', 'used')
if tonumber(stored[1]) == day then
  used = tonumber(stored[2]) or 0
end
if per_day > 0 and used + estimate > per_day then
  return {'tokens', used, next_day_ms - now_ms, day}
end

redis.call('ZADD', log, now_ms, request_id)
redis.call('PEXPIRE', log, minute)
redis.call('HSET', budget, 'day', day, 'used', used + estimate)
redis.call('PEXPIREAT', budget, next_day_ms + minute)
return {'ok', used + estimate, 0, day}
