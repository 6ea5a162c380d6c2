-- Record a run of events of ONE key and tally intervals ending at each event's time.
--
-- KEYS[1] events  (ZSET: member = event id, score = event time in integer microseconds)
-- KEYS[2] amounts (HASH: event id -> "units:token[:tallies]", units = amount in 1/10,000)
-- KEYS[3] meta    (HASH: newest, first, trimmed)
-- ARGV[1] allowed lateness, ARGV[2] keep (lateness + longest reach), ARGV[3] "1" for totals,
-- ARGV[4] ttl in ms, ARGV[5] retain, ARGV[6] number of intervals k, then k pairs (offset, reach),
-- then the run token, then one string "at units at units ...", then the event ids, one
-- argument each (few arguments keep the client's encoding cheap). An empty run token says each
-- event brings its own delivery token: the string is then "at units token at units token ...".
--
-- Reply: one string of numbers separated by spaces: the key's first event time before the
-- run (-1 for none), then per event its status (0 new, 1 duplicate, 2 late) and per interval
-- its count (and, with totals, the sum as two exact parts, high * 1e8 + low: Lua's numbers
-- are doubles). An event's token is the run token and its place in the run.
--
-- A duplicate whose stored token equals the arriving token is the same delivery retried (a
-- run resent after a dropped connection): it is answered as new, with fresh tallies. Events
-- that bring their own token (a queue's redeliverable entries) also keep the tallies they were
-- answered with, and a redelivery is answered with those, the same as the first time, even
-- past the horizon: the newest `retain` events of a key are never trimmed, so a redelivered
-- run of up to that many events per key is always found.
--
-- Cost: string.format and every redis.call are dear in Redis's Lua. A new event makes one
-- ZADD NX; its windows are counted off edge pointers when its run is in time order (below),
-- else with one ZCOUNT per interval (numeric bounds: times are integers, so the exclusive
-- lower bound t is the inclusive t + 1). Amounts are written with one HSET per run; what no
-- interval can reach is trimmed once an eighth of the horizon has passed, and an id past the
-- horizon but not yet trimmed is treated exactly as a forgotten one.

local events, amounts, meta = KEYS[1], KEYS[2], KEYS[3]
local lateness = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local totals = ARGV[3] == '1'
local ttl = tonumber(ARGV[4])
local retain = tonumber(ARGV[5])
local k = tonumber(ARGV[6])
local offsets, reaches, lows = {}, {}, {}
for j = 1, k do
  offsets[j] = tonumber(ARGV[5 + 2 * j])
  reaches[j] = tonumber(ARGV[6 + 2 * j])
  lows[j] = reaches[j] - 1
end
local run_token = ARGV[7 + 2 * k]
local numbers = {}
for word in string.gmatch(ARGV[8 + 2 * k], '%S+') do
  numbers[#numbers + 1] = word
end
local first_id = 9 + 2 * k
local width = run_token == '' and 3 or 2

-- The token of the event at place e of the run.
local function token_of(e, base)
  if width == 3 then
    return numbers[base + 3]
  end
  return run_token .. '.' .. (e - first_id)
end

local function fmt(x)
  return string.format('%.0f', x)
end

-- Amounts stored by this run are written with one HSET at its end: look them up here first.
local written = {}

local function sum_amounts(ids)
  local high, low = 0, 0
  for i = 1, #ids, 4000 do
    local values = redis.call('HMGET', amounts, unpack(ids, i, math.min(i + 3999, #ids)))
    for n, value in ipairs(values) do
      value = written[ids[i + n - 1]] or value
      if value then
        local units = string.match(value, '^(%d+)')
        high = high + (tonumber(string.sub(units, 1, -9)) or 0)
        low = low + tonumber(string.sub(units, -8))
      end
    end
  end
  return high, low
end

local state = redis.call('HMGET', meta, 'newest', 'first', 'trimmed')
local newest = tonumber(state[1])
local first = tonumber(state[2])
local trimmed = tonumber(state[3])
local out = {first and fmt(first) or '-1'}
local changed = false

-- Counting without a ZCOUNT per event. When a run comes in time order and starts no earlier
-- than the key's newest event, every window edge (event time - d) only moves forward during
-- the run: the stored events at or below each edge are counted once, the stored events the
-- edge passes during the run are fetched once, and both are counted off as it advances, with
-- the run's own new events. C(x), the events at or below x, then answers every window.
-- (For fewer than three events the fetches cost more than they save.)
local fast = not totals and #ARGV - first_id >= 2
local run_first, run_last
if fast then
  for e = first_id, #ARGV do
    local at = tonumber(numbers[(e - first_id) * width + 1])
    if (run_last and at < run_last) or (newest and at < newest) then
      fast = false
      break
    end
    run_first = run_first or at
    run_last = at
  end
end
local edges, card, added = {}, 0, {}
if fast then
  card = redis.call('ZCARD', events)
  for j = 1, k do
    for _, d in ipairs({offsets[j], reaches[j]}) do
      if d > 0 and not edges[d] and fast then
        local passed = redis.call('ZRANGEBYSCORE', events, '(' .. fmt(run_first - d),
                                  run_last - d, 'WITHSCORES', 'LIMIT', 0, 2000)
        fast = #passed < 4000
        edges[d] = {below = redis.call('ZCOUNT', events, '-inf', run_first - d),
                    passed = passed, i = 2, mine = 0, m = 1}
      end
    end
  end
end

-- C(at - d) for the fast path; calls for one d come with nondecreasing at.
local function at_or_below(d, at)
  if d == 0 then
    return card + #added
  end
  local edge, x = edges[d], at - d
  local passed = edge.passed
  while edge.i <= #passed and tonumber(passed[edge.i]) <= x do
    edge.below = edge.below + 1
    edge.i = edge.i + 2
  end
  while edge.m <= #added and added[edge.m] <= x do
    edge.mine = edge.mine + 1
    edge.m = edge.m + 1
  end
  return edge.below + edge.mine
end

-- For an id already in the set: 'retry' (and the tallies kept, if any) when this very
-- delivery was stored before; else nil when it is past the horizon (forgotten), 1 (duplicate)
-- otherwise.
local function seen_status(id, score, token)
  local stored = written[id] or redis.call('HGET', amounts, id)
  if stored then
    local stored_token, tallies = string.match(stored, '^%d+:([^:]*):?(.*)$')
    if stored_token == token then
      return 'retry', tallies
    end
  end
  if newest and score <= newest - keep then
    return nil
  end
  return 1
end

for e = first_id, #ARGV do
  local base = (e - first_id) * width
  local id = ARGV[e]
  local at = tonumber(numbers[base + 1])
  local status, kept
  if newest and at < newest - lateness then
    local seen = redis.call('ZSCORE', events, id)
    if seen then
      status, kept = seen_status(id, tonumber(seen), token_of(e, base))
    end
    status = status or 2
  elseif redis.call('ZADD', events, 'NX', at, id) == 1 then
    status = 'new'
    if fast then
      added[#added + 1] = at
    end
  else
    status, kept = seen_status(id, tonumber(redis.call('ZSCORE', events, id)), token_of(e, base))
    if status == nil then
      redis.call('ZADD', events, at, id)
      status = 'new'
      if fast then
        -- A forgotten event moved up from below every edge to now.
        card = card - 1
        for _, edge in pairs(edges) do
          edge.below = edge.below - 1
        end
        added[#added + 1] = at
      end
    end
  end
  if status == 'new' then
    written[id] = numbers[base + 2] .. ':' .. token_of(e, base)
    if not first or at < first then
      first = at
      changed = true
    end
    if not newest or at > newest then
      newest = at
      changed = true
    end
  end
  if status == 'retry' and kept and kept ~= '' then
    out[#out + 1] = 0
    out[#out + 1] = kept
  elseif status == 'new' or status == 'retry' then
    local tallies = {}
    for j = 1, k do
      if totals then
        local ids = redis.call('ZRANGEBYSCORE', events, at - lows[j], at - offsets[j])
        local h, l = sum_amounts(ids)
        tallies[#tallies + 1] = #ids
        tallies[#tallies + 1] = fmt(h)
        tallies[#tallies + 1] = fmt(l)
      elseif fast then
        tallies[#tallies + 1] = at_or_below(offsets[j], at) - at_or_below(reaches[j], at)
      else
        tallies[#tallies + 1] = redis.call('ZCOUNT', events, at - lows[j], at - offsets[j])
      end
    end
    local text = table.concat(tallies, ' ')
    out[#out + 1] = 0
    out[#out + 1] = text
    if status == 'new' and width == 3 then
      written[id] = written[id] .. ':' .. text
    end
  else
    out[#out + 1] = status
    for _ = 1, (totals and 3 * k or k) do
      out[#out + 1] = 0
    end
  end
end

local pending = {}
for id, value in pairs(written) do
  pending[#pending + 1] = id
  pending[#pending + 1] = value
end
for i = 1, #pending, 4000 do
  redis.call('HSET', amounts, unpack(pending, i, math.min(i + 3999, #pending)))
end
if changed then
  local horizon = newest - keep
  if not trimmed or horizon - trimmed >= keep / 8 then
    -- Past the horizon, but never the newest `retain`: both are prefixes of the set.
    local n = math.min(redis.call('ZCOUNT', events, '-inf', horizon),
                       redis.call('ZCARD', events) - retain)
    if n > 0 then
      local old = redis.call('ZRANGE', events, 0, n - 1)
      redis.call('ZREMRANGEBYRANK', events, 0, n - 1)
      for i = 1, #old, 4000 do
        redis.call('HDEL', amounts, unpack(old, i, math.min(i + 3999, #old)))
      end
    end
    trimmed = horizon
    -- Idle keys expire; refreshing the time to live at each trim keeps it off the common path.
    redis.call('PEXPIRE', events, ttl)
    redis.call('PEXPIRE', amounts, ttl)
    redis.call('PEXPIRE', meta, ttl)
  end
  -- Numbers, not text: Redis writes a script's numbers exactly, and string.format is dear.
  redis.call('HSET', meta, 'newest', newest, 'first', first, 'trimmed', trimmed)
end
return table.concat(out, ' ')
