#!lua
-- Replace a request's reserved tokens by what it really used (never below zero). A request
-- that straddles midnight UTC stays counted on the day it was admitted.
-- KEYS: token budget (hash: day, used)
-- ARGV: day of the reservation, used minus reserved
local budget = KEYS[1]
if tonumber(redis.call('HGET', budget, 'day')) ~= tonumber(ARGV[1]) then
  return -1
end
local used = redis.call('HINCRBY', budget, 'used', ARGV[2])
if used < 0 then
  redis.call('HSET', budget, 'used', 0)
  used = 0
end
return used
