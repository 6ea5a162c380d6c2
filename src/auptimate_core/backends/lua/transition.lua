-- Compare-and-set of one rule's lifecycle state for one key.
-- KEYS[1] lifecycle (HASH: rule -> "1:since[:cause]" firing or "0:since[:cause]" idle)
-- KEYS[2] before    (HASH: rule -> "batch\n" .. the state before that batch's first change)
-- ARGV[1] rule, ARGV[2] "1" to fire or "0" to resolve, ARGV[3] event time of the change,
-- followed by ":" and the id of the transaction that caused it when there is one,
-- ARGV[4] the batch asking for it, or "".
-- Reply: 1 if the state changed (or is this very change, made before by the same cause),
-- 0 if it already was what was asked.

local current = redis.call('HGET', KEYS[1], ARGV[1])
local target = ARGV[2] .. ':' .. ARGV[3]
if ARGV[4] ~= '' then
  local before = redis.call('HGET', KEYS[2], ARGV[1])
  if not before or string.match(before, '^[^\n]*') ~= ARGV[4] then
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[4] .. '\n' .. (current or ''))
  end
end
if current == target and string.find(ARGV[3], ':', 1, true) then
  return 1
end
local firing = current and string.sub(current, 1, 1) == '1'
if (ARGV[2] == '1') == (firing and true or false) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], target)
return 1
