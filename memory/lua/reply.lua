-- A reply in flight (memory/reply_stream.py): a small hash (id, state, owner, lease, stop,
-- text so far, error, the stored reply's seq) and a stream of its chunks, both of one conversation and one user slot.
-- KEYS: the hash, the stream
-- ARGV: the operation, then its arguments (below). Times are Redis's own (TIME), in ms.
local HASH, CHUNKS, op = KEYS[1], KEYS[2], ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', HASH, 'state')
local function live()
  return state == 'streaming' and tonumber(redis.call('HGET', HASH, 'lease') or '0') > now
end
local function keep(ttl_ms)
  redis.call('PEXPIRE', HASH, ttl_ms)
  if redis.call('EXISTS', CHUNKS) == 1 then
    redis.call('PEXPIRE', CHUNKS, ttl_ms)
  end
end
local function mine(owner, id)
  return state == 'streaming' and redis.call('HGET', HASH, 'owner') == owner
    and redis.call('HGET', HASH, 'id') == id
end
if op == 'claim' then -- id, owner, lease ms, ttl ms: {'ok'} or {'busy', id}
  if live() then
    return {'busy', redis.call('HGET', HASH, 'id')}
  end
  redis.call('DEL', HASH, CHUNKS)
  redis.call('HSET', HASH, 'id', ARGV[2], 'owner', ARGV[3], 'state', 'streaming',
    'lease', now + tonumber(ARGV[4]), 'stop', '0', 'text', '', 'started', now)
  redis.call('PEXPIRE', HASH, tonumber(ARGV[5]))
  return {'ok'}
elseif op == 'release' then -- id, owner: a claim whose turn never began
  if mine(ARGV[3], ARGV[2]) then
    redis.call('DEL', HASH, CHUNKS)
  end
  return {'ok'}
elseif op == 'append' then -- id, owner, lease ms, ttl ms, maxlen, text: {'ok'|'lost', stop}
  if not mine(ARGV[3], ARGV[2]) then
    return {'lost', '0'}
  end
  local text = ARGV[7] or ''
  if text ~= '' then
    local offset = string.len(redis.call('HGET', HASH, 'text') or '')
    redis.call('HSET', HASH, 'text', (redis.call('HGET', HASH, 'text') or '') .. text)
    redis.call('XADD', CHUNKS, 'MAXLEN', '~', tonumber(ARGV[6]), '*', 'at', offset, 'd', text)
  end
  redis.call('HSET', HASH, 'lease', now + tonumber(ARGV[4]))
  keep(tonumber(ARGV[5]))
  return {'ok', redis.call('HGET', HASH, 'stop')}
elseif op == 'end' then -- id, owner, state, error, ttl ms, the stored reply's seq ('' none)
  if not mine(ARGV[3], ARGV[2]) then
    return {'lost'}
  end
  redis.call('HSET', HASH, 'state', ARGV[4], 'error', ARGV[5], 'lease', now, 'seq', ARGV[7])
  redis.call('XADD', CHUNKS, 'MAXLEN', '~', 64, '*', 'end', ARGV[4])
  keep(tonumber(ARGV[6]))
  return {'ok'}
elseif op == 'stop' then -- id: {'ok'} asked, {'ended', state}, {'stale'}
  if redis.call('HGET', HASH, 'id') ~= ARGV[2] then
    return {'stale'}
  end
  if state ~= 'streaming' then
    return {'ended', state or ''}
  end
  redis.call('HSET', HASH, 'stop', '1')
  return {'ok'}
elseif op == 'interrupt' then -- ttl ms: a streaming reply whose lease lapsed, interrupted
  if state ~= 'streaming' or live() then
    return {'no'}
  end
  redis.call('HSET', HASH, 'state', 'interrupted')
  redis.call('XADD', CHUNKS, 'MAXLEN', '~', 64, '*', 'end', 'interrupted')
  keep(tonumber(ARGV[2]))
  return {'ok'}
elseif op == 'dismiss' then -- id: an ended reply's record, no longer shown
  if redis.call('HGET', HASH, 'id') == ARGV[2] and state ~= 'streaming' then
    redis.call('DEL', HASH, CHUNKS)
  end
  return {'ok'}
end
-- 'read': {the hash (flat HGETALL), the newest stream entry id ('0' when none), now}
local newest = redis.call('XREVRANGE', CHUNKS, '+', '-', 'COUNT', 1)[1]
return {redis.call('HGETALL', HASH), newest and newest[1] or '0', now}
