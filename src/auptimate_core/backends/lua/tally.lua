-- Tally intervals ending at one time for one key, recording nothing.
-- KEYS[1] events, KEYS[2] amounts; ARGV[1] end time, ARGV[2] "1" for totals, then pairs
-- (offset, reach). Reply: per interval the count, the high sum and the low sum.

local events, amounts = KEYS[1], KEYS[2]
local at = tonumber(ARGV[1])
local out = {}
for j = 3, #ARGV, 2 do
  local high = string.format('%.0f', at - tonumber(ARGV[j]))
  local low = '(' .. string.format('%.0f', at - tonumber(ARGV[j + 1]))
  local ids = redis.call('ZRANGEBYSCORE', events, low, high)
  local h, l = 0, 0
  if ARGV[2] == '1' then
    for i = 1, #ids, 4000 do
      local values = redis.call('HMGET', amounts, unpack(ids, i, math.min(i + 3999, #ids)))
      for _, value in ipairs(values) do
        if value then
          local units = string.match(value, '^(%d+)')
          h = h + (tonumber(string.sub(units, 1, -9)) or 0)
          l = l + tonumber(string.sub(units, -8))
        end
      end
    end
  end
  out[#out + 1] = #ids
  out[#out + 1] = h
  out[#out + 1] = l
end
return out
