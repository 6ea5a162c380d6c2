-- Compare-and-set of one rule's lifecycle state for one key.
-- KEYS[1] lifecycle (HASH: rule -> "1:since[:cause]" firing or "0:since[:cause]" idle)
-- ARGV[1] rule, ARGV[2] "1" to fire or "0" to resolve, ARGV[3] event time of the change,
-- followed by ":" and the id of the transaction that caused it when there is one.
-- Reply: 1 if the state changed, 0 if it already was what was asked.

local current = redis.call('HGET', KEYS[1], ARGV[1])
local firing = current and string.sub(current, 1, 1) == '1'
if (ARGV[2] == '1') == (firing and true or false) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
return 1
