-- Remove the tail of one conversation (its messages with seq >= ARGV[2]) in one atomic step:
-- editing the last prompt removes prompt and reply, regenerating removes the reply. Refuses
-- to remove more than ARGV[3] messages, so a stale seq cannot wipe a conversation, and, when
-- ARGV[5] names the newest seq the page showed, refuses if the conversation's newest is
-- another (a message was added or removed since). A summary checkpoint that covers a removed
-- message goes with it. Run twice with the same ARGV[6], it removes once (common.lua).
-- KEYS: the user's keys (common.lua)
-- ARGV: conversation id, from seq, most it may remove, prune batch, expected newest seq
--       ('' = no check), operation id
-- Returns {removed} or {-1} (expired messages must be pruned first) or {-2, found}
--      or {-3, newest seq now}
local cid, from, expect, op = ARGV[1], ARGV[2], ARGV[5], ARGV[6]
local done = replayed(op)
if done then
  return {tonumber(done)}
end
local newest = stale(cid, expect)
if newest then
  return {-3, newest}
end
if begin(now_ms(), tonumber(ARGV[4])) > 0 then
  return {-1}
end
local keys, bytes = tail_of(cid, from, tonumber(ARGV[3]))
if #keys > tonumber(ARGV[3]) then
  return {-2, #keys}
end
remove_tail(cid, keys, from, bytes)
record_removal(op, #keys)
return {#keys}
