-- Tally intervals ending at one time for one key, recording nothing.
-- KEYS[1] events, KEYS[2] amounts (as in observe.lua); ARGV[1] end time, ARGV[2] "1" for
-- totals, then pairs (offset, reach). Reply: per interval the count and the sum of the amounts
-- in four parts of six decimal digits, high to low (each part exact: see observe.lua).
-- Lower bounds stop at SPLIT, below which lie the late and future ids, outside every window.

local SPLIT = -(2 ^ 61)
local events, amounts = KEYS[1], KEYS[2]
local at = tonumber(ARGV[1])
local out = {}
for j = 3, #ARGV, 2 do
  local high = string.format('%.0f', at - tonumber(ARGV[j]))
  local low = '(' .. string.format('%.0f', math.max(at - tonumber(ARGV[j + 1]), SPLIT))
  local ids = redis.call('ZRANGEBYSCORE', events, low, high)
  local a, b, c, d = 0, 0, 0, 0
  if ARGV[2] == '1' then
    for i = 1, #ids, 4000 do
      local values = redis.call('HMGET', amounts, unpack(ids, i, math.min(i + 3999, #ids)))
      for _, value in ipairs(values) do
        if value then
          local units = string.match(value, '^(%d+)')
          d = d + tonumber(string.sub(units, -6))
          c = c + (tonumber(string.sub(units, -12, -7)) or 0)
          b = b + (tonumber(string.sub(units, -18, -13)) or 0)
          a = a + (tonumber(string.sub(units, 1, -19)) or 0)
        end
      end
    end
  end
  out[#out + 1] = #ids
  out[#out + 1] = a
  out[#out + 1] = b
  out[#out + 1] = c
  out[#out + 1] = d
end
return out
