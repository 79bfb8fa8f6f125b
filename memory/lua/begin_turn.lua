-- Begin a chat turn in one atomic step (memory/store.py `begin_turn`): check that the page's
-- target is current, that the user's storage caps and model limits (limits.lua) admit it,
-- then remove the messages an edit or regenerate replaces, store the prompt (once per message
-- id), hold the request's reservation, and return the request's context window and summary
-- state. A refusal writes nothing (pruning expired messages aside). Loaded with `#!lua`:
-- refused whole when Redis is full or read-only. Run twice with the same request id, the
-- second run only reads.
-- KEYS: the user's keys (common.lua), the prompt's message key (any user key when none)
-- ARGV: conversation id, request id, window size ('' = the user's stored size, else the
--       default ARGV[4]), prune batch, replace from seq ('' = none), expected newest seq
--       ('' = no check), most messages replaced, requests per minute, tokens per day, tokens
--       reserved on top of the window (the longest reply), the default instruction's tokens,
--       the reply primer's tokens, keep ('1': the replaced messages are kept as the earlier
--       alternative of a branch, common.lua `fork_tail`; '': removed), then the prompt
--       (common.lua `message_at`; none: absent)
-- Returns {'ok', tokens reserved, day, prompt seq (0: none), prompt created ms, removed,
--          registered (0/1), window rows (common.lua `message_rows`, oldest first),
--          settings (flat HGETALL), window size, summary on ('1') or not, checkpoint (flat)}
--      or {'stale', newest seq} / {'prune'} / {'too_many', found} / {'not_prompt'} (a
--         branch must start at a prompt of the shown branch)
--      or {'limit', name, current, maximum} / {'requests' | 'tokens', used, resets_in_ms,
--          day, tokens needed}
local cid, request_id, from, prompt_key = ARGV[1], ARGV[2], ARGV[6], KEYS[12]
local window, batch, most = window_size(ARGV[3], ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[8])
local keep = ARGV[14] == '1'
local m = false
if #ARGV > 14 then
  m = message_at(15)
end

local function window_keys(before, room)
  if room <= 0 then
    return {}
  elseif before then
    return reversed(redis.call('ZREVRANGEBYSCORE', timeline_of(cid), '(' .. before, '-inf',
      'LIMIT', 0, room))
  end
  return reversed(redis.call('ZREVRANGE', timeline_of(cid), 0, room - 1))
end

local function started(reserved, day, seq, created, removed, rows)
  return {'ok', reserved, day, seq, created, removed, redis.call('HEXISTS', SETTINGS,
    'registered'), rows, redis.call('HGETALL', SETTINGS), window,
    redis.call('HGET', SETTINGS, 'summary_enabled') or '', redis.call('HGETALL', summary_of(cid))}
end

local held = held_tokens(TOKEN_BUDGET, request_id)
if held then -- a re-sent call: it has run
  local seq = (m and stored_seq(cid, prompt_key)) or 0
  return started(held, tonumber(redis.call('HGET', TOKEN_BUDGET, 'day')), seq,
    (m and created_ms_of(prompt_key)) or 0, 0, message_rows(cid, window_keys(false, window), 0))
end
local newest = stale(cid, ARGV[7])
if newest then
  return {'stale', newest}
end
local now = now_ms()
if begin(now, batch) > 0 then
  return {'prune'}
end
local stored = m and stored_seq(cid, prompt_key)
local replacing = from ~= '' and not stored
local tail, freed = {}, 0
if replacing then
  tail, freed = tail_of(cid, from, most)
  if #tail > most then
    return {'too_many', #tail}
  end
  local first = tail[1]
  if keep and (not m or not first
      or tonumber(redis.call('ZSCORE', timeline_of(cid), first)) ~= tonumber(from)
      or redis.call('HGET', first, 'role') ~= 'user') then
    return {'not_prompt'}
  end
end
local fresh = m and not stored
local room = window
if fresh then
  room = window - 1
end
local rows = message_rows(cid, window_keys(replacing and from, room), 0)
-- The reservation: the window as stored (instruction, messages, the prompt, the primer)
-- plus the longest reply.
local system_tokens = ARGV[12]
if redis.call('HEXISTS', SETTINGS, 'system_text') == 1 then
  system_tokens = redis.call('HGET', SETTINGS, 'system_tokens') or '0'
end
local estimate = tonumber(ARGV[11]) + tonumber(ARGV[13]) + tonumber(system_tokens)
for i = 2, #rows, 2 do
  estimate = estimate + tonumber(rows[i][5])
end
if fresh then
  if window > 0 then
    estimate = estimate + tonumber(m.token_count)
  end
  local refused = false
  if keep then
    refused = no_room(cid, m, 0, 0, 0)
  else
    refused = no_room(cid, m, 0, #tail, freed)
  end
  if refused then
    return refused
  end
end
local verdict = limit_verdict(REQUEST_LOG, TOKEN_BUDGET, tonumber(ARGV[9]), tonumber(ARGV[10]),
  estimate, now)
if verdict[1] ~= 'ok' then
  verdict[5] = estimate
  return verdict
end
local parent, alternative = false, 0
if replacing and keep then
  parent, alternative = fork_tail(cid, from, tail)
elseif replacing then
  remove_tail(cid, tail, from, freed)
end
local seq, created = stored or 0, 0
if fresh then
  seq, created = store_message(cid, prompt_key, m, now)
  if parent then
    set_fork(cid, parent, alternative, alternative, seq)
  end
  if window > 0 then
    rows[#rows + 1] = prompt_key
    rows[#rows + 1] = redis.call('HMGET', prompt_key, unpack(MESSAGE_FIELDS))
  end
elseif stored then
  created = created_ms_of(prompt_key) or 0
end
hold_request(REQUEST_LOG, TOKEN_BUDGET, verdict, estimate, request_id, now)
return started(estimate, verdict[4], seq, created, #tail, rows)
