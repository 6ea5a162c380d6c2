-- Append one shard's part of a batch of ledger changes to its stream and move the shard's
-- relay cursor to the batch's last change, in one step.
--
-- KEYS[1] the shard stream; KEYS[2] the relay's cursor for that shard (HASH: count, cursor),
--         in the stream's hash slot.
-- ARGV[1] the stream's MAXLEN (0: no cap); ARGV[2] the number of the change just before the
--         batch (changes are numbered 1, 2, 3 ... from the start of the feed); ARGV[3] the
--         number of the batch's last change; ARGV[4] its feed cursor; then, for each entry in
--         feed order: the number of its change, how many field/value pairs follow, the pairs.
-- Reply: {entries appended now, the change number the cursor held before}, or a GAP error
-- when the cursor is before the batch's first change (the changes between would be skipped).
--
-- An entry is appended only when its change is past the cursor, and the cursor moves in the
-- same script: a batch sent again (a relay restarted after a crash, a retry after a lost
-- reply, a second relay) appends nothing twice and keeps the shard in feed order.

local held = 0
local stored = redis.call('HGET', KEYS[2], 'count')
if stored then
  held = tonumber(stored)
  if not held then
    return redis.error_reply('relay cursor ' .. KEYS[2] .. ' holds no change number')
  end
end

local maxlen = tonumber(ARGV[1])
local after = tonumber(ARGV[2])
local last = tonumber(ARGV[3])
if held < after then
  return redis.error_reply('GAP relay cursor ' .. KEYS[2] .. ' is at change ' .. held ..
                           ', before this batch (changes ' .. (after + 1) .. ' to ' .. last ..
                           ')')
end
local added = 0
local i = 5
while i <= #ARGV do
  local number = tonumber(ARGV[i])
  local stop = i + 1 + 2 * tonumber(ARGV[i + 1])
  if number > held then
    local command = {'XADD', KEYS[1]}
    if maxlen > 0 then
      command[#command + 1] = 'MAXLEN'
      command[#command + 1] = '~'
      command[#command + 1] = maxlen
    end
    command[#command + 1] = '*'
    for j = i + 2, stop do
      command[#command + 1] = ARGV[j]
    end
    redis.call(unpack(command))
    added = added + 1
  end
  i = stop + 1
end

if last > held then
  redis.call('HSET', KEYS[2], 'count', ARGV[3], 'cursor', ARGV[4])
end
return {added, held}
