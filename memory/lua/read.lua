-- Read a slice of one conversation's timeline with the user's settings and the conversation's
-- row, in one round trip (common.lua `read_conversation` says what it returns). Up to ARGV[6]
-- expired messages are pruned first; if more remain, 'pending' says how many (the caller
-- prunes them in further bounded calls and reads again).
-- KEYS: the user's keys (common.lua)
-- ARGV: mode ('recent' = the newest max(ARGV[2], window); 'after' = up to ARGV[2] with
--       seq > ARGV[3]), the window size wanted (ARGV[4]; '' = the user's stored size, else
--       the default ARGV[5]), prune batch (ARGV[6]), conversation id (ARGV[7])
-- The window size is decided here and only here, so one round trip reads enough messages.
return read_conversation(ARGV[7], ARGV[1], tonumber(ARGV[2]), ARGV[3],
  window_size(ARGV[4], ARGV[5]), tonumber(ARGV[6]))
