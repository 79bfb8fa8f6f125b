-- Admit one model request for one user, or say which limit refuses it and when it resets
-- (limits.lua). Both limits are checked and, when both allow it, both recorded, in one atomic
-- step: any number of app instances and threads see exactly the limit. Loaded with a
-- `#!lua` first line, so Redis refuses the whole script up front when it is out of memory
-- or read-only instead of letting it write part way. Run twice, it holds the request once.
-- KEYS: request log, token budget
-- ARGV: requests per minute, tokens per day, tokens this request may use, request id
-- Returns {verdict, used, resets_in_ms, day}: verdict is 'ok', 'requests' or 'tokens'.
local log, budget, request_id = KEYS[1], KEYS[2], ARGV[4]
local estimate = tonumber(ARGV[3])
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if held_tokens(budget, request_id) then
  local stored = redis.call('HMGET', budget, 'used', 'day')
  return {'ok', tonumber(stored[1]), 0, tonumber(stored[2])}
end
local verdict = limit_verdict(log, budget, tonumber(ARGV[1]), tonumber(ARGV[2]), estimate, now)
if verdict[1] == 'ok' then
  verdict[2] = hold_request(log, budget, verdict, estimate, request_id, now)
end
return verdict
