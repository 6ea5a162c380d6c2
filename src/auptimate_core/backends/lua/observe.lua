-- Record a run of events of ONE key and tally intervals ending at each event's time.
--
-- KEYS[1] events  (ZSET: member = event id, score = event time in microseconds)
-- KEYS[2] amounts (HASH: event id -> "high:low:token", amount = high * 1e8 + low)
-- KEYS[3] meta    (HASH: newest, first)
-- ARGV[1] allowed lateness, ARGV[2] keep (lateness + longest reach), ARGV[3] "1" for totals,
-- ARGV[4] ttl in ms, ARGV[5] number of intervals k, then k pairs (offset, reach),
-- then the events as quintuples (id, at, high, low, token).
--
-- Reply: per event, status (0 new, 1 duplicate, 2 late), first-seen time, then per interval
-- the count (and, with totals, the high and low sums). Amounts are split in two parts so that
-- every sum stays an exact integer in Lua's doubles.
--
-- A duplicate whose stored token equals the arriving token is the same delivery retried (a
-- batch resent after a dropped connection): it is answered as new, with fresh tallies.

local events, amounts, meta = KEYS[1], KEYS[2], KEYS[3]
local lateness = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local totals = ARGV[3] == '1'
local ttl = tonumber(ARGV[4])
local k = tonumber(ARGV[5])
local spans = {}
for j = 1, k do
  spans[j] = {tonumber(ARGV[4 + 2 * j]), tonumber(ARGV[5 + 2 * j])}
end
local first_arg = 6 + 2 * k

local function fmt(x)
  return string.format('%.0f', x)
end

local function sum_amounts(ids)
  local high, low = 0, 0
  for i = 1, #ids, 4000 do
    local values = redis.call('HMGET', amounts, unpack(ids, i, math.min(i + 3999, #ids)))
    for _, value in ipairs(values) do
      if value then
        local h, l = string.match(value, '^(%-?%d+):(%d+)')
        high = high + tonumber(h)
        low = low + tonumber(l)
      end
    end
  end
  return high, low
end

local state = redis.call('HMGET', meta, 'newest', 'first')
local newest = tonumber(state[1])
local first = tonumber(state[2])
local out = {}
for e = first_arg, #ARGV, 5 do
  local id, at_text, token = ARGV[e], ARGV[e + 1], ARGV[e + 4]
  local at = tonumber(at_text)
  local status = 0
  local seen = redis.call('ZSCORE', events, id)
  if seen then
    local stored = redis.call('HGET', amounts, id)
    if not (stored and string.match(stored, ':([^:]*)$') == token and token ~= '') then
      status = 1
    end
  elseif newest and at < newest - lateness then
    status = 2
  else
    redis.call('ZADD', events, at, id)
    redis.call('HSET', amounts, id, ARGV[e + 2] .. ':' .. ARGV[e + 3] .. ':' .. token)
    if not first or at < first then
      first = at
      redis.call('HSET', meta, 'first', at_text)
    end
    if not newest or at > newest then
      newest = at
      redis.call('HSET', meta, 'newest', at_text)
      local horizon = fmt(newest - keep)
      local old = redis.call('ZRANGEBYSCORE', events, '-inf', horizon)
      if #old > 0 then
        redis.call('ZREMRANGEBYSCORE', events, '-inf', horizon)
        for i = 1, #old, 4000 do
          redis.call('HDEL', amounts, unpack(old, i, math.min(i + 3999, #old)))
        end
      end
    end
  end
  out[#out + 1] = status
  out[#out + 1] = first or -1
  for j = 1, k do
    if status == 0 then
      local high = fmt(at - spans[j][1])
      local low = '(' .. fmt(at - spans[j][2])
      if totals then
        local ids = redis.call('ZRANGEBYSCORE', events, low, high)
        local h, l = sum_amounts(ids)
        out[#out + 1] = #ids
        out[#out + 1] = h
        out[#out + 1] = l
      else
        out[#out + 1] = redis.call('ZCOUNT', events, low, high)
      end
    else
      out[#out + 1] = 0
      if totals then
        out[#out + 1] = 0
        out[#out + 1] = 0
      end
    end
  end
end
redis.call('PEXPIRE', events, ttl)
redis.call('PEXPIRE', amounts, ttl)
redis.call('PEXPIRE', meta, ttl)
return out
