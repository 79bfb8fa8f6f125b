-- Shared by every per-user script (prepended to each by memory/store.py).
-- KEYS[1..11] of every per-user script are memory/keys.py KeyLayout.user_keys(): all share the
-- user's hash tag, so the keys derived from them below live in the same cluster slot.
-- Conversation '0' is the legacy one (data from before conversations): its timeline and
-- summary are the old per-user keys; every other conversation's keys add ':<id>' (the rule
-- KeyLayout._per_conversation applies in Python).
-- The expiry set holds '<bytes>|<conversation id>|<message key>' scored by the expiry time in
-- ms (legacy members '<bytes>|<message key>' belong to conversation '0'), so pruning an
-- expired message knows its timeline and how many bytes to take off the user's total even
-- after Redis has already dropped the hash.
local SETTINGS, EXPIRY, CONVS, PINNED = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local TIMELINE_BASE, RECORD_BASE, SUMMARY_BASE = KEYS[5], KEYS[6], KEYS[7]
local REQUEST_LOG, TOKEN_BUDGET, ROWS, LISTING = KEYS[8], KEYS[9], KEYS[10], KEYS[11]
local LEGACY = '0'
-- LISTING scores: a pinned row ranks above every unpinned one (last-active ms stay far below
-- 2^44 ms, the year 2527) and the head above all.
local PIN_RANK, HEAD_RANK = 17592186044416, '+inf'
local TITLE_BYTES, TITLE_WORDS, ADOPT_TITLE_SCAN = 60, 8, 10

local function now_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end

local function conv_key(base, cid)
  if cid == LEGACY then
    return base
  end
  return base .. ':' .. cid
end

local function timeline_of(cid)
  return conv_key(TIMELINE_BASE, cid)
end

local function record_of(cid)
  return RECORD_BASE .. ':' .. cid
end

local function summary_of(cid)
  return conv_key(SUMMARY_BASE, cid)
end

-- The seq of a conversation's newest message, 0 when it has none.
local function newest_seq(cid)
  return tonumber(redis.call('ZREVRANGE', timeline_of(cid), 0, 0, 'WITHSCORES')[2] or '0')
end

-- An action that removes messages names the newest seq the page showed (`expect`, '' = no
-- check) and carries an id (`op`, '' = none) minted once per call in Python. The first run
-- of `op` records '<op>|<result>' in SETTINGS, so a re-sent script (redis-py resends after a
-- stall) returns that result instead of checking or removing again: a message added in the
-- meantime is neither reported as a change nor removed. Returns the recorded result (a
-- string) or false.
local function replayed(op)
  if op == '' then
    return false
  end
  local done = redis.call('HGET', SETTINGS, 'removal')
  if done and string.sub(done, 1, #op + 1) == op .. '|' then
    return string.sub(done, #op + 2)
  end
  return false
end

local function record_removal(op, result)
  if op ~= '' then
    redis.call('HSET', SETTINGS, 'removal', op .. '|' .. result)
  end
end

-- False when the conversation's newest seq is `expect` (or no check was asked), else the
-- newest seq it has now.
local function stale(cid, expect)
  if expect == '' then
    return false
  end
  local newest = newest_seq(cid)
  if newest == tonumber(expect) then
    return false
  end
  return newest
end

-- Rewrite one conversation's row from its record, timeline, last-active time and pin
-- ('<id>|<messages>|<created s>|<last active s>|<pinned 0/1>|<title source>|<title>', times
-- to the ms) in ROWS (the row by id) and LISTING (the rows in list order), or drop it when
-- the conversation has no record. Every script that changes any of those calls it, so a page
-- of the list is one native ZREVRANGE of LISTING. Returns the row, or false.
local function refresh_row(cid)
  local old = redis.call('HGET', ROWS, cid)
  local record = redis.call('HMGET', record_of(cid), 'title', 'title_source', 'created_ms')
  if not record[3] then
    if old then
      redis.call('HDEL', ROWS, cid)
      redis.call('ZREM', LISTING, old)
    end
    return false
  end
  local created = tonumber(record[3])
  local last = tonumber(redis.call('ZSCORE', CONVS, cid)) or created
  local pinned_at, rank, pinned = redis.call('ZSCORE', PINNED, cid), last, 0
  if pinned_at then
    rank, pinned = PIN_RANK + tonumber(pinned_at), 1
  end
  local row = string.format('%s|%d|%.3f|%.3f|%d|%s|%s', cid,
    redis.call('ZCARD', timeline_of(cid)), created / 1000, math.floor(last) / 1000, pinned,
    record[2] or '', record[1] or '')
  if old ~= row then
    if old then
      redis.call('ZREM', LISTING, old)
    end
    redis.call('HSET', ROWS, cid, row)
  end
  redis.call('ZADD', LISTING, rank, row)
  return row
end

-- LISTING's head ('#|<conversations>|<ms the next message expires, or empty>', ranked above
-- every row) tells a reader of a page that it holds every conversation and whether any
-- message is due to be pruned first. It stands only while LISTING has exactly one row per
-- conversation: data from before LISTING, or anything out of step, leaves no head, and the
-- list script then rebuilds the rows. Called by every script that changes the number of
-- conversations or the expiry set.
local function refresh_head()
  local total = redis.call('ZCARD', CONVS)
  local top = redis.call('ZREVRANGE', LISTING, 0, 0, 'WITHSCORES')
  local head = false
  if top[2] == 'inf' then
    head = top[1]
  end
  local rows = redis.call('ZCARD', LISTING)
  if head then
    rows = rows - 1
  end
  local wanted = false
  if total > 0 and rows == total then
    local next_expiry = redis.call('ZRANGE', EXPIRY, 0, 0, 'WITHSCORES')[2]
    wanted = string.format('#|%d|%s', total, next_expiry or '')
  end
  if head ~= wanted then
    if head then
      redis.call('ZREM', LISTING, head)
    end
    if wanted then
      redis.call('ZADD', LISTING, HEAD_RANK, wanted)
    end
  end
end

local function message_bytes(key)
  return redis.call('HSTRLEN', key, 'content') + redis.call('HSTRLEN', key, 'metadata')
end

local function expiry_member(cid, key, bytes)
  return bytes .. '|' .. cid .. '|' .. key
end

-- Remove a message's expiry entry, in today's form and (conversation '0') the legacy one.
local function forget_expiry(cid, key, bytes)
  redis.call('ZREM', EXPIRY, expiry_member(cid, key, bytes))
  if cid == LEGACY then
    redis.call('ZREM', EXPIRY, bytes .. '|' .. key)
  end
end

local function parse_member(member)
  local bytes, cid, key = string.match(member, '^(%d+)|([0-9a-f]+)|(.+)$')
  if key then
    return tonumber(bytes), cid, key
  end
  bytes, key = string.match(member, '^(%d+)|(.+)$')
  if key then
    return tonumber(bytes), LEGACY, key
  end
  return 0, LEGACY, member
end

local function add_field(field, delta)
  if delta ~= 0 and redis.call('HINCRBY', SETTINGS, field, delta) < 0 then
    redis.call('HSET', SETTINGS, field, 0)
  end
end

local function add_bytes(delta)
  add_field('stored_bytes', delta)
end

local function add_messages(delta)
  add_field('stored_messages', delta)
end

local function created_ms_of(key)
  local created = redis.call('HGET', key, 'created_at')
  if created then
    return math.floor(tonumber(created) * 1000 + 0.5)
  end
  return nil
end

-- Cut a string to at most n bytes without splitting a UTF-8 character.
local function utf8_cut(text, n)
  if #text <= n then
    return text
  end
  text = string.sub(text, 1, n)
  local i = #text
  while i > 0 and string.byte(text, i) >= 0x80 and string.byte(text, i) < 0xC0 do
    i = i - 1
  end
  if i > 0 and string.byte(text, i) >= 0xC0 then
    local lead = string.byte(text, i)
    local need = 2
    if lead >= 0xF0 then
      need = 4
    elseif lead >= 0xE0 then
      need = 3
    end
    if #text - i + 1 < need then
      text = string.sub(text, 1, i - 1)
    end
  end
  return text
end

-- The title made of a prompt's first words (title source 'words'); control characters
-- (a NUL would cut the list's row) count as spaces.
local function first_words(text)
  local title, count = '', 0
  for word in string.gmatch((string.gsub(text, '%c', ' ')), '%S+') do
    local candidate = word
    if title ~= '' then
      candidate = title .. ' ' .. word
    end
    if #candidate > TITLE_BYTES then
      if title == '' then
        title = utf8_cut(word, TITLE_BYTES)
      end
      break
    end
    title, count = candidate, count + 1
    if count == TITLE_WORDS then
      break
    end
  end
  return title
end

-- Data of the release before conversations (one timeline per user, no conversation list)
-- becomes conversation '0', in place: no message moves, and once its record exists this is a
-- no-op, so running it on every call changes nothing more.
local function adopt(now)
  local record = record_of(LEGACY)
  if redis.call('EXISTS', TIMELINE_BASE) == 0 or redis.call('EXISTS', record) == 1 then
    return
  end
  local first = redis.call('ZRANGE', TIMELINE_BASE, 0, ADOPT_TITLE_SCAN - 1)
  local newest = redis.call('ZRANGE', TIMELINE_BASE, -1, -1)[1]
  local title = ''
  for _, key in ipairs(first) do
    local values = redis.call('HMGET', key, 'role', 'content')
    if values[1] == 'user' and values[2] then
      title = first_words(values[2])
      break
    end
  end
  local source = 'words'
  if title == '' then
    source = ''
  end
  local created = created_ms_of(first[1]) or now
  redis.call('HSET', record, 'title', title, 'title_source', source, 'created_ms', created)
  redis.call('ZADD', CONVS, created_ms_of(newest) or now, LEGACY)
  if redis.call('HEXISTS', SETTINGS, 'stored_messages') == 0 then
    redis.call('HSET', SETTINGS, 'stored_messages', redis.call('ZCARD', TIMELINE_BASE))
  end
  refresh_row(LEGACY)
  refresh_head()
end

-- Remove up to `batch` messages whose retention ran out; returns how many expired remain.
local function prune(now, batch)
  local expired = redis.call('ZRANGEBYSCORE', EXPIRY, '-inf', now, 'LIMIT', 0, batch)
  if #expired == 0 then
    return 0
  end
  local keys, freed, removed, touched = {}, 0, 0, {}
  for i, member in ipairs(expired) do
    local bytes, cid, key = parse_member(member)
    freed = freed + bytes
    keys[i] = key
    removed = removed + redis.call('ZREM', timeline_of(cid), key)
    touched[cid] = true
  end
  redis.call('DEL', unpack(keys))
  redis.call('ZREM', EXPIRY, unpack(expired))
  for cid in pairs(touched) do
    refresh_row(cid)
  end
  refresh_head()
  add_bytes(-freed)
  add_messages(-removed)
  return redis.call('ZCOUNT', EXPIRY, '-inf', now)
end

-- Adopt legacy data, then prune: what every script that reads or writes messages runs first.
local function begin(now, batch)
  adopt(now)
  return prune(now, batch)
end

-- One conversation as the list shows it, or false when it has no record. The list passes
-- `last` (its score) and `pinned` (0/1), already read in bulk, to save two calls per row.
local function info_row(cid, last, pinned)
  local record = redis.call('HMGET', record_of(cid), 'title', 'title_source', 'created_ms')
  if not record[3] then
    return false
  end
  last = last or redis.call('ZSCORE', CONVS, cid) or record[3]
  if pinned == nil then
    pinned = 0
    if redis.call('ZSCORE', PINNED, cid) then
      pinned = 1
    end
  end
  return {cid, record[1] or '', record[2] or '', record[3], last,
    redis.call('ZCARD', timeline_of(cid)), pinned}
end
