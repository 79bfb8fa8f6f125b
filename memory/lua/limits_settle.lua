-- Replace a request's reserved tokens by what it really used, once (limits.lua).
-- KEYS: token budget
-- ARGV: day of the reservation, request id ('' = a reservation without one), tokens used,
--       tokens reserved
return settle_request(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
