-- One user's memories (memory/memories.py), each change one atomic step in the user's slot.
-- KEYS: the user's keys (common.lua: MEMORIES, SOURCES and memory_key derive from SETTINGS)
-- ARGV[1] = op:
--   'add' id text now_ms cap cid seq origin merge_into supersede token_count vector
--     A new memory (cid '' = typed, no source); `merge_into`: the memory it restates (the
--     source is added to that one, nothing new is stored); `supersede`: the memory it
--     contradicts (kept, marked superseded by the new one). Returns {status, id}:
--     'added' | 'merged' | 'replaced' | 'full' (at the cap) | 'nosource' (no such message).
--   'edit' id text token_count vector   -> {1} or {0} (no such memory)
--   'delete' id                         -> {1} or {0}
--   'pin' id 0/1                        -> {1} or {0}; unpinned with every source expired,
--     it expires now
--   'used' now_ms id...                 -> {updated}
local op = ARGV[1]
local FIELDS_WITH_VECTOR = 'vec'

local function add_source_entry(record, id, source)
  local sources = cjson.decode(redis.call('HGET', record, 'sources') or '[]')
  for _, known in ipairs(sources) do
    if known.k == source.k then
      return
    end
  end
  sources[#sources + 1] = source
  redis.call('HSET', record, 'sources', cjson.encode(sources))
  local ids = redis.call('HGET', SOURCES, source.k)
  redis.call('HSET', SOURCES, source.k, ((ids and (ids .. ' ')) or '') .. id)
end

local function unlink_sources(id)
  local raw = redis.call('HGET', memory_key(id), 'sources')
  if not raw then
    return
  end
  for _, source in ipairs(cjson.decode(raw)) do
    local ids = redis.call('HGET', SOURCES, source.k)
    if ids then
      local rest = {}
      for other in string.gmatch(ids, '%S+') do
        if other ~= id then
          rest[#rest + 1] = other
        end
      end
      if #rest == 0 then
        redis.call('HDEL', SOURCES, source.k)
      else
        redis.call('HSET', SOURCES, source.k, table.concat(rest, ' '))
      end
    end
  end
end

local function source_of(cid, seq)
  if cid == '' then
    return nil, true
  end
  local key = redis.call('ZRANGEBYSCORE', timeline_of(cid), seq, seq, 'LIMIT', 0, 1)[1]
  if not key or redis.call('EXISTS', key) == 0 then
    return nil, false
  end
  return {c = cid, m = tonumber(seq), k = key}, true
end

local function store_vector(record, vector)
  if vector ~= '' then
    redis.call('HSET', record, FIELDS_WITH_VECTOR, vector)
  else
    redis.call('HDEL', record, FIELDS_WITH_VECTOR)
  end
end

local function add(id, text, now, cap, cid, seq, origin, merge_into, supersede, tokens, vector)
  local source, found = source_of(cid, seq)
  if not found then
    return {'nosource', ''}
  end
  if merge_into ~= '' and redis.call('EXISTS', memory_key(merge_into)) == 1 then
    if source then
      add_source_entry(memory_key(merge_into), merge_into, source)
    end
    redis.call('HSET', memory_key(merge_into), 'merged_ms', now)
    return {'merged', merge_into}
  end
  if redis.call('ZCARD', MEMORIES) >= cap then
    return {'full', ''}
  end
  local record = memory_key(id)
  redis.call('HSET', record, 'content', text, 'user_tag', string.sub(MEM_TAG, 2, -2),
    'session_tag', id, 'timestamp', now, 'role', 'memory', 'created_at', now / 1000,
    'token_count', tokens, 'state', 'active', 'pinned', '0', 'origin', origin,
    'sources', '[]', 'last_used_ms', 0)
  store_vector(record, vector)
  redis.call('ZADD', MEMORIES, now, id)
  if source then
    add_source_entry(record, id, source)
  end
  local old = memory_key(supersede)
  if supersede ~= '' and redis.call('HGET', old, 'state') == 'active' then
    redis.call('HSET', old, 'state', 'superseded', 'superseded_by', id)
    redis.call('HSET', record, 'supersedes', supersede)
    return {'replaced', id}
  end
  return {'added', id}
end

if op == 'add' then
  return add(ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7],
    ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12])
end
local id = ARGV[2]
if op == 'used' then
  local updated = 0
  for i = 3, #ARGV do
    if redis.call('EXISTS', memory_key(ARGV[i])) == 1 then
      redis.call('HSET', memory_key(ARGV[i]), 'last_used_ms', ARGV[2])
      updated = updated + 1
    end
  end
  return {updated}
end
local record = memory_key(id)
if redis.call('EXISTS', record) == 0 then
  return {0}
end
if op == 'edit' then
  redis.call('HSET', record, 'content', ARGV[3], 'token_count', ARGV[4])
  store_vector(record, ARGV[5])
elseif op == 'delete' then
  unlink_sources(id)
  delete_memory(id)
elseif op == 'pin' then
  redis.call('HSET', record, 'pinned', ARGV[3])
  local sources = cjson.decode(redis.call('HGET', record, 'sources') or '[]')
  local live = 0
  for _, source in ipairs(sources) do
    if not source.gone then
      live = live + 1
    end
  end
  if ARGV[3] == '0' and #sources > 0 and live == 0 then  -- unpinned after its sources expired
    unlink_sources(id)
    delete_memory(id)
  end
end
return {1}
