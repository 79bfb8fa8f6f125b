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
-- (a NUL would cut the list's row) count as spaces. Where the prompt goes on past
-- TITLE_WORDS words or TITLE_BYTES bytes, the title ends with the last whole phrase (a word
-- past the first ending in . ! ? ; : , or a bracket), else with the words kept and '…'. The
-- same rule as chatbot/titles.py's first_words.
local function without_stop(text)
  return (string.gsub(text, '[%.,;:]+$', ''))
end

local function first_words(text)
  local words, length, continues = {}, 0, false
  for word in string.gmatch((string.gsub(text, '%c', ' ')), '%S+') do
    local added = #word
    if #words > 0 then
      added = added + 1
    end
    if #words == TITLE_WORDS or length + added > TITLE_BYTES then
      if #words == 0 then
        words[1] = utf8_cut(word, TITLE_BYTES)
      end
      continues = true
      break
    end
    words[#words + 1] = word
    length = length + added
  end
  if not continues then
    return without_stop(table.concat(words, ' '))
  end
  local last = 0
  for i = 2, #words do
    if string.find(words[i], '[%.!?;:,%)]$') then
      last = i
    end
  end
  if last > 0 then
    return without_stop(table.concat(words, ' ', 1, last))
  end
  return table.concat(words, ' ') .. '…'
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

-- Memories (memory/memories.py) live in the user's slot too; their keys are derived from
-- SETTINGS ('<index>:user:{tag}'), like the per-conversation keys from their bases:
-- MEMORIES ('<index>:mems:{tag}', sorted set of memory ids by creation ms), SOURCES
-- ('<index>:memsrc:{tag}', hash of message key -> space-separated ids of the memories that
-- came from it) and each record '<index>:mem:{tag}:<id>' (a hash; `sources` is a JSON list
-- of {c = conversation id, m = seq, k = message key, gone = 1 once expired}).
local MEM_INDEX, MEM_TAG = string.match(SETTINGS, '^(.*):user:(%b{})$')
local MEMORIES = MEM_INDEX .. ':mems:' .. MEM_TAG
local SOURCES = MEM_INDEX .. ':memsrc:' .. MEM_TAG

local function memory_key(id)
  return MEM_INDEX .. ':mem:' .. MEM_TAG .. ':' .. id
end

local function delete_memory(id)
  redis.call('DEL', memory_key(id))
  redis.call('ZREM', MEMORIES, id)
end

-- The messages `keys` are gone: each memory that came from one of them loses that source,
-- and a memory left with no live source is deleted with them, in the same script. Expiring
-- (retention) keeps a pinned memory, its source marked gone.
local function forget_sources(keys, expiring)
  for _, key in ipairs(keys) do
    local ids = redis.call('HGET', SOURCES, key)
    if ids then
      redis.call('HDEL', SOURCES, key)
      for id in string.gmatch(ids, '%S+') do
        local record = memory_key(id)
        local fields = redis.call('HMGET', record, 'sources', 'pinned')
        if fields[1] then
          local kept, live = {}, 0
          for _, source in ipairs(cjson.decode(fields[1])) do
            if source.k == key then
              if expiring and fields[2] == '1' then
                source.gone = 1
                kept[#kept + 1] = source
              end
            else
              kept[#kept + 1] = source
            end
            if source.k ~= key and not source.gone then
              live = live + 1
            end
          end
          if live == 0 and not (expiring and fields[2] == '1') then
            delete_memory(id)
          else
            redis.call('HSET', record, 'sources', cjson.encode(kept))
          end
        end
      end
    end
  end
end

-- --- branches (memory/branches.py) -------------------------------------------------------
-- Editing prompt k of a conversation keeps what it replaces: the timeline stays the one list
-- of the *shown* branch, and the tail k..end moves out of it, in the same script, into
-- HIDDEN_OF(cid) (a sorted set of every hidden message key of the conversation by seq) and a
-- stored alternative of the fork point. A fork point is named by the seq of the message before
-- k (its parent; 0 = the start): FORKS_OF(cid) holds '<parent>' -> '<shown>|<count>|<head
-- seq>' (the alternatives are numbered 1..count, `head` is the first message of the shown
-- one) and ALTS_OF(cid) '<parent>:<i>' -> the JSON list of the keys of alternative i while
-- it is not shown. A hidden message keeps its hash (retention, caps and totals count it) but
-- its `user_tag` and `session_tag` carry HIDDEN_MARK, so search, recall and the embedding
-- backlog of the user do not see it; a memory that came from it has the source marked hidden.
local USER_TAG = string.sub(MEM_TAG, 2, -2)
local HIDDEN_MARK = '~hidden'

local function hidden_of(cid)
  return conv_key(MEM_INDEX .. ':hidden:' .. MEM_TAG, cid)
end

local function forks_of(cid)
  return conv_key(MEM_INDEX .. ':forks:' .. MEM_TAG, cid)
end

local function alts_of(cid)
  return conv_key(MEM_INDEX .. ':alts:' .. MEM_TAG, cid)
end

local function session_tag_of(cid)
  if cid == LEGACY then
    return USER_TAG
  end
  return USER_TAG .. '-' .. cid
end

-- Mark (or unmark) the sources of memories that came from `keys` as hidden.
local function mark_sources(keys, hidden)
  for _, key in ipairs(keys) do
    local ids = redis.call('HGET', SOURCES, key)
    if ids then
      for id in string.gmatch(ids, '%S+') do
        local record = memory_key(id)
        local raw = redis.call('HGET', record, 'sources')
        if raw then
          local sources = cjson.decode(raw)
          for _, source in ipairs(sources) do
            if source.k == key then
              if hidden then
                source.hidden = 1
              else
                source.hidden = nil
              end
            end
          end
          redis.call('HSET', record, 'sources', cjson.encode(sources))
        end
      end
    end
  end
end

-- Move `keys` (in the timeline) out of it into the hidden set, tags marked.
local function hide_keys(cid, keys)
  if #keys == 0 then
    return
  end
  local timeline, hidden = timeline_of(cid), hidden_of(cid)
  local user, session = USER_TAG .. HIDDEN_MARK, session_tag_of(cid) .. HIDDEN_MARK
  for _, key in ipairs(keys) do
    local seq = redis.call('ZSCORE', timeline, key)
    if seq then
      redis.call('ZADD', hidden, seq, key)
    end
    if redis.call('EXISTS', key) == 1 then
      redis.call('HSET', key, 'user_tag', user, 'session_tag', session)
    end
  end
  redis.call('ZREM', timeline, unpack(keys))
  mark_sources(keys, true)
end

-- Move the still hidden and stored ones of `keys` back into the timeline, tags restored.
-- Returns the seq of the first one moved (0: none was left).
local function show_keys(cid, keys)
  local timeline, hidden, shown, head = timeline_of(cid), hidden_of(cid), {}, 0
  for _, key in ipairs(keys) do
    local seq = redis.call('ZSCORE', hidden, key)
    if seq and redis.call('EXISTS', key) == 1 then
      redis.call('ZADD', timeline, seq, key)
      redis.call('HSET', key, 'user_tag', USER_TAG, 'session_tag', session_tag_of(cid))
      shown[#shown + 1] = key
      if head == 0 or tonumber(seq) < head then
        head = tonumber(seq)
      end
    end
  end
  if #shown > 0 then
    redis.call('ZREM', hidden, unpack(shown))
    mark_sources(shown, false)
  end
  return head
end

-- The fork point `parent` of conversation `cid`: shown, count, head (false when none).
local function fork_of(cid, parent)
  local record = redis.call('HGET', forks_of(cid), parent)
  if not record then
    return false
  end
  local shown, count, head = string.match(record, '^(%d+)|(%d+)|(%d+)$')
  return {tonumber(shown), tonumber(count), tonumber(head)}
end

local function set_fork(cid, parent, shown, count, head)
  redis.call('HSET', forks_of(cid), parent, shown .. '|' .. count .. '|' .. head)
end

-- The seq of the message before `seq` in the shown branch (0: it is the first).
local function parent_of(cid, seq)
  return tonumber(redis.call('ZREVRANGEBYSCORE', timeline_of(cid), '(' .. seq, '-inf',
    'WITHSCORES', 'LIMIT', 0, 1)[2] or '0')
end

-- A summary checkpoint covering a message past `parent` covers one that is no longer shown.
local function drop_summary_past(cid, parent)
  local covers = tonumber(redis.call('HGET', summary_of(cid), 'covers_seq') or '0')
  if covers > tonumber(parent) then
    redis.call('DEL', summary_of(cid))
  end
end

-- Editing prompt `from` (the first of `tail`, the shown messages from it on): the tail
-- becomes the stored alternative it was at its fork point, and a new alternative, shown and
-- counted, starts (its head is set once the edited prompt is stored: set_fork). Returns the
-- fork's parent and the new alternative's number and count.
local function fork_tail(cid, from, tail)
  local parent = parent_of(cid, from)
  local fork = fork_of(cid, parent) or {1, 1, 0}
  redis.call('HSET', alts_of(cid), parent .. ':' .. fork[1], cjson.encode(tail))
  hide_keys(cid, tail)
  drop_summary_past(cid, parent)
  return parent, fork[2] + 1
end

-- The branch keys of a conversation, deleted with it once its hidden messages are gone.
local function drop_branches(cid)
  redis.call('DEL', forks_of(cid), alts_of(cid), hidden_of(cid))
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
    removed = removed + redis.call('ZREM', hidden_of(cid), key)
    touched[cid] = true
  end
  redis.call('DEL', unpack(keys))
  redis.call('ZREM', EXPIRY, unpack(expired))
  forget_sources(keys, true)
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

-- One conversation as the list shows it (the row refresh_row writes; memory/listing.py parses
-- it), or false when it has no record. A row missing (data from before LISTING) is written.
local function row_of(cid)
  local row = redis.call('HGET', ROWS, cid)
  if row then
    return row
  end
  row = refresh_row(cid)
  if row then
    refresh_head()
  end
  return row
end

-- --- messages: stored, read and removed the same way by every script ----------------------

local MESSAGE_FIELDS = {'role', 'content', 'timestamp', 'created_at', 'token_count',
  'token_encoding', 'metadata'}

-- A message in ARGV, from position `at` (memory/store.py `_message_args` builds it): role,
-- content, session_tag, token_count, token_encoding, metadata, prompt_tokens,
-- completion_tokens (both '' = not counted in the user's usage totals), user_id, entry_id,
-- user tag, created_ms ('' = now; set only by imports), max_messages, max_bytes.
local MESSAGE_ARGS = 14
local function message_at(at)
  local a = {}
  for i = 1, MESSAGE_ARGS do
    a[i] = ARGV[at + i - 1]
  end
  return {role = a[1], content = a[2], session_tag = a[3], token_count = a[4],
    encoding = a[5], metadata = a[6], prompt_tokens = a[7], completion_tokens = a[8],
    user_id = a[9], entry_id = a[10], user_tag = a[11], created = a[12],
    max_messages = tonumber(a[13]), max_bytes = tonumber(a[14])}
end

-- The seq of the message already stored under `key` (a retried or resent write), or false.
-- (Its caller returns the user's `registered` flag with it: a resend after an unknown outcome
-- may find the user still missing from the registry.)
local function stored_seq(cid, key)
  local existing = redis.call('ZSCORE', timeline_of(cid), key)
  if not existing and redis.call('EXISTS', key) == 1 then
    existing = redis.call('HGET', key, 'timestamp')
  end
  return existing and tonumber(existing)
end

-- Whether the user's caps leave room for message `m` in conversation `cid` once `freed`
-- messages of `freed_bytes` go: false, or the refusal {'limit', name, current, maximum} /
-- {'prune'} (expired messages, `pending` of them, must go first). A new conversation counts
-- against the message cap too (name 'conversations'): each holds at least a message's worth
-- (its record and list row), so empty ones cannot pile up past it.
local function no_room(cid, m, pending, freed, freed_bytes)
  local count = tonumber(redis.call('HGET', SETTINGS, 'stored_messages') or '0') - pending
    - freed
  if count >= m.max_messages then
    return {'limit', 'MAX_MESSAGES_PER_USER', count, m.max_messages}
  end
  local conversations = redis.call('ZCARD', CONVS)
  if conversations >= m.max_messages and redis.call('EXISTS', record_of(cid)) == 0 then
    return {'limit', 'conversations', conversations, m.max_messages}
  end
  local stored = tonumber(redis.call('HGET', SETTINGS, 'stored_bytes') or '0') - freed_bytes
  if stored + #m.content + #m.metadata > m.max_bytes then
    if pending > 0 then
      return {'prune'}
    end
    return {'limit', 'MAX_BYTES_PER_USER', stored, m.max_bytes}
  end
  return false
end

-- Store message `m` under `key` at the end of conversation `cid`: next sequence number (per
-- user), the hash (a redisvl MessageHistory document), its place in the timeline, the
-- conversation's record and list row (created with the first message; titled by the first
-- prompt's words until a better title comes) and last-active time, the user's retention,
-- message, byte and usage totals. Returns seq, created_ms.
local function store_message(cid, key, m, now)
  local created = now
  if m.created ~= '' then
    created = tonumber(m.created)
  end
  local seq = redis.call('HINCRBY', SETTINGS, 'seq', 1)
  redis.call('HSETNX', SETTINGS, 'user_id', m.user_id)
  local fields = {
    'entry_id', m.entry_id, 'role', m.role, 'content', m.content, 'session_tag', m.session_tag,
    'user_tag', m.user_tag, 'timestamp', seq, 'created_at', string.format('%.3f', created / 1000),
    'token_count', m.token_count, 'token_encoding', m.encoding,
  }
  if m.metadata ~= '' then
    fields[#fields + 1] = 'metadata'
    fields[#fields + 1] = m.metadata
  end
  redis.call('HSET', key, unpack(fields))
  redis.call('ZADD', timeline_of(cid), seq, key)
  local record = record_of(cid)
  if redis.call('EXISTS', record) == 0 then
    redis.call('HSET', record, 'title', '', 'title_source', '', 'created_ms', created)
  end
  if m.role == 'user' and (redis.call('HGET', record, 'title_source') or '') == '' then
    redis.call('HSET', record, 'title', first_words(m.content), 'title_source', 'words')
  end
  -- Last activity orders the list: a live write lands strictly after the newest one, so two
  -- writes in the same millisecond keep their order (imports keep their own, older, times).
  local active = created
  if m.created == '' then
    local newest = tonumber(redis.call('ZREVRANGE', CONVS, 0, 0, 'WITHSCORES')[2] or '0')
    -- (Only a tie of live writes: an imported time ahead of the clock is not followed.)
    if newest >= active and newest < active + 1000 then
      active = newest + 0.001
    end
  end
  redis.call('ZADD', CONVS, 'GT', active, cid)
  local size = #m.content + #m.metadata
  add_bytes(size)
  add_messages(1)
  local ttl = redis.call('HGET', SETTINGS, 'ttl')
  if ttl then
    local expire_at = now + tonumber(ttl) * 1000
    redis.call('PEXPIREAT', key, expire_at)
    redis.call('ZADD', EXPIRY, expire_at, expiry_member(cid, key, size))
  end
  refresh_row(cid)
  refresh_head()
  if m.prompt_tokens ~= '' then
    redis.call('HINCRBY', SETTINGS, 'usage_prompt_tokens', m.prompt_tokens)
    redis.call('HINCRBY', SETTINGS, 'usage_completion_tokens', m.completion_tokens)
    redis.call('HINCRBY', SETTINGS, 'usage_replies', 1)
    -- Replies whose numbers are the app's estimate (the server reported none), so a total
    -- holding any can be shown as an estimate (Usage.as_metadata writes the flag so).
    if string.find(m.metadata, '"estimated": true', 1, true) then
      redis.call('HINCRBY', SETTINGS, 'usage_estimated_replies', 1)
    end
  end
  return seq, created
end

-- The keys of a conversation's tail, its messages with seq >= `from`, at most `most` + 1 of
-- them (more than `most`: a caller refuses), and the bytes they hold.
local function tail_of(cid, from, most)
  local keys = redis.call('ZRANGEBYSCORE', timeline_of(cid), from, '+inf', 'LIMIT', 0, most + 1)
  local bytes = 0
  for _, key in ipairs(keys) do
    bytes = bytes + message_bytes(key)
  end
  return keys, bytes
end

-- Remove a tail found by tail_of (an edit or regenerate), and the summary checkpoint when it
-- covers one of its messages.
local function remove_tail(cid, keys, from, bytes)
  if #keys == 0 then
    return
  end
  for _, key in ipairs(keys) do
    forget_expiry(cid, key, message_bytes(key))
  end
  redis.call('ZREM', timeline_of(cid), unpack(keys))
  redis.call('DEL', unpack(keys))
  forget_sources(keys, false)
  local covers = tonumber(redis.call('HGET', summary_of(cid), 'covers_seq') or '0')
  if covers >= tonumber(from) then
    redis.call('DEL', summary_of(cid))
  end
  refresh_row(cid)
  refresh_head()
  add_bytes(-bytes)
  add_messages(-#keys)
end

-- {key, fields, key, fields, ...} of `keys`, in their order. A key whose hash Redis already
-- expired leaves the timeline here unless expired messages are still `pending` (their
-- pruning takes them off the totals).
local function message_rows(cid, keys, pending)
  local rows, vanished = {}, 0
  for _, key in ipairs(keys) do
    local values = redis.call('HMGET', key, unpack(MESSAGE_FIELDS))
    if values[1] then
      rows[#rows + 1] = key
      rows[#rows + 1] = values
    elseif pending == 0 then
      vanished = vanished + redis.call('ZREM', timeline_of(cid), key)
    end
  end
  if vanished > 0 then
    add_messages(-vanished)
    refresh_row(cid)
  end
  return rows
end

local function reversed(list)
  local out = {}
  for i = #list, 1, -1 do
    out[#out + 1] = list[i]
  end
  return out
end

-- The window size a read uses: `wanted`, or '' for the user's stored size (else `default`).
local function window_size(wanted, default)
  return tonumber(wanted) or tonumber(redis.call('HGET', SETTINGS, 'window_size') or default)
end

-- A slice of one conversation's timeline with the user's settings and the conversation's
-- row, after pruning up to `batch` expired messages (memory/store.py parses it,
-- `MessageReader.conversation`): mode 'recent' = the newest max(limit, window), 'after' = up
-- to `limit` with seq > `after`. Returns {total, settings (flat HGETALL), rows oldest first,
-- now_ms, expiry of the oldest expiring message ('' when none), the window size, pending
-- (expired messages still to prune; the total leaves them out), the conversation's list row
-- (false when it has no record), its newest seq, its fork points (flat HGETALL of
-- forks_of)}.
local function read_conversation(cid, mode, limit, after, window, batch)
  local timeline = timeline_of(cid)
  if mode == 'recent' then
    limit = math.max(limit, window)
  end
  local now = now_ms()
  local pending = begin(now, batch)
  local keys = {}
  if limit > 0 and mode == 'recent' then
    keys = reversed(redis.call('ZREVRANGE', timeline, 0, limit - 1))
  elseif limit > 0 then
    keys = redis.call('ZRANGEBYSCORE', timeline, '(' .. after, '+inf', 'LIMIT', 0, limit)
  end
  local rows = message_rows(cid, keys, pending)
  local oldest = redis.call('ZRANGE', EXPIRY, 0, 0, 'WITHSCORES')[2] or ''
  return {redis.call('ZCARD', timeline) - pending, redis.call('HGETALL', SETTINGS), rows, now,
    oldest, window, pending, row_of(cid), newest_seq(cid), redis.call('HGETALL', forks_of(cid))}
end
