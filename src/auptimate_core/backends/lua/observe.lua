-- Record a run of events of ONE key and tally intervals ending at each event's time.
--
-- KEYS[1] events  (ZSET: member = event id, score = event time in microseconds)
-- KEYS[2] amounts (HASH: event id -> "high:low:token", amount = high * 1e8 + low)
-- KEYS[3] meta    (HASH: newest, first)
-- ARGV[1] allowed lateness, ARGV[2] keep (lateness + longest reach), ARGV[3] "1" for totals,
-- ARGV[4] ttl in ms, ARGV[5] number of intervals k, then k pairs (offset, reach),
-- then the batch token, then one string of numbers "at high low row at high low row ...",
-- then the event ids, one argument each (few arguments keep the client's encoding cheap).
--
-- Reply: one string, per event a line "status first count [high low] count [high low] ...":
-- status 0 new, 1 duplicate, 2 late; per interval the count (and, with totals, the high and
-- low sums). Amounts are split in two parts so that every sum stays an exact integer in
-- Lua's doubles. Each event's token is the batch token and its row in the batch.
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
local batch_token = ARGV[6 + 2 * k]
local numbers = {}
for word in string.gmatch(ARGV[7 + 2 * k], '%S+') do
  numbers[#numbers + 1] = word
end
local first_id = 8 + 2 * k

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
local changed = false
for e = first_id, #ARGV do
  local base = (e - first_id) * 4
  local id, at_text = ARGV[e], numbers[base + 1]
  local token = batch_token .. '.' .. numbers[base + 4]
  local at = tonumber(at_text)
  local status = 0
  local seen = redis.call('ZSCORE', events, id)
  -- An id is remembered while its event can still be reached (trimming is done per run).
  if seen and newest and tonumber(seen) <= newest - keep then
    seen = false
  end
  if seen then
    local stored = redis.call('HGET', amounts, id)
    if not (stored and string.match(stored, ':([^:]*)$') == token and token ~= '') then
      status = 1
    end
  elseif newest and at < newest - lateness then
    status = 2
  else
    redis.call('ZADD', events, at, id)
    redis.call('HSET', amounts, id, numbers[base + 2] .. ':' .. numbers[base + 3] .. ':' .. token)
    if not first or at < first then
      first = at
      changed = true
    end
    if not newest or at > newest then
      newest = at
      changed = true
    end
  end
  local line = {status, fmt(first or -1)}
  for j = 1, k do
    if status == 0 then
      local high = fmt(at - spans[j][1])
      local low = '(' .. fmt(at - spans[j][2])
      if totals then
        local ids = redis.call('ZRANGEBYSCORE', events, low, high)
        local h, l = sum_amounts(ids)
        line[#line + 1] = #ids
        line[#line + 1] = fmt(h)
        line[#line + 1] = fmt(l)
      else
        line[#line + 1] = redis.call('ZCOUNT', events, low, high)
      end
    else
      line[#line + 1] = totals and '0 0 0' or '0'
    end
  end
  out[#out + 1] = table.concat(line, ' ')
end
-- Written once per run: what no interval can reach any more is forgotten, then the new
-- newest and first times are stored.
if changed then
  redis.call('HSET', meta, 'newest', fmt(newest), 'first', fmt(first))
  local horizon = fmt(newest - keep)
  local old = redis.call('ZRANGEBYSCORE', events, '-inf', horizon)
  if #old > 0 then
    redis.call('ZREMRANGEBYSCORE', events, '-inf', horizon)
    for i = 1, #old, 4000 do
      redis.call('HDEL', amounts, unpack(old, i, math.min(i + 3999, #old)))
    end
  end
end
redis.call('PEXPIRE', events, ttl)
redis.call('PEXPIRE', amounts, ttl)
redis.call('PEXPIRE', meta, ttl)
return table.concat(out, '\n')
