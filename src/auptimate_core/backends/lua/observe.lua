-- Record a run of events of ONE key and tally intervals ending at each event's time.
--
-- KEYS[1] events  (ZSET: member = event id, score = the time the id was recorded at, below)
-- KEYS[2] amounts (HASH: event id -> "units:token:tallies" for an event in the windows, the
--                  tallies it was answered with after "T" (with sums) or "C" (counts only);
--                  "L:token:record" or "F:token:record" for a late or a future one)
-- KEYS[3] meta    (HASH: newest, first, trimmed)
-- ARGV[1] allowed lateness, ARGV[2] keep (lateness + longest reach), ARGV[3] memory (how long
-- an id is remembered: the dedup horizon, at least keep), ARGV[4] "1" for totals, ARGV[5] ttl
-- in ms, ARGV[6] retain, ARGV[7] not_after ("" for none), ARGV[8] number of intervals k, then k
-- pairs (offset, reach), then the run token, then one string "at units at units ...", then
-- the event ids, one argument each (few arguments keep the client's encoding cheap). An empty
-- run token says each event brings its own delivery token: the string is then
-- "at units token at units token ...".
--
-- Reply: one string of numbers separated by spaces: the key's first event time before the
-- run (-1 for none), then per event its status (0 new, 1 duplicate, 2 late, 3 future) and per
-- interval its count (and, with totals, the sum as four exact parts, high to low, each part
-- summing six decimal digits of the amounts: Lua's numbers are doubles, and 2**32 members of a
-- sorted set times 10**6 stays below 2**53). An event's token is the run token and its place in
-- the run.
--
-- One sorted set holds both the windows and the remembered ids. An event in the windows is
-- scored by its event time. A late or future event, remembered but outside the windows, is
-- scored by its record time (the key's newest, or not_after) minus 2**62: every such score lies
-- below SPLIT and every event time above it (the client keeps times within 2**60), so the
-- windows never see them, and a new event still costs a single ZADD NX. Those scores are
-- rounded (to 512 or 1,024 microseconds), so the exact record time lives in the amounts hash;
-- the score only orders them for trimming.
--
-- A duplicate whose stored token equals the arriving token is the same delivery retried (a
-- run resent after a dropped connection, a batch named again after a failure, a queue's entry
-- redelivered): it is answered as the first time, late, future, or new with the tallies it was
-- answered with (kept with its token: events recorded since, ties later in its own run among
-- them, would change fresh ones), even past the horizon: the newest `retain` events of a key
-- are never trimmed, so a redelivered run of up to that many events per key is found. Kept
-- tallies of the other kind (counts asked, sums kept) are made afresh.
--
-- Cost: string.format and every redis.call are dear in Redis's Lua. A new event makes one
-- ZADD NX; its windows are counted off edge pointers when its run is in time order (below),
-- else with one ZCOUNT per interval (numeric bounds: times are integers, so the exclusive
-- lower bound t is the inclusive t + 1). Amounts are written with one HSET per run; what the
-- memory no longer covers is trimmed once an eighth of keep has passed, and an id past the
-- memory but not yet trimmed is treated exactly as a forgotten one.

local SHIFT = 2 ^ 62
local SPLIT = -(2 ^ 61)

local events, amounts, meta = KEYS[1], KEYS[2], KEYS[3]
local lateness = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local memory = tonumber(ARGV[3])
local totals = ARGV[4] == '1'
local ttl = tonumber(ARGV[5])
local retain = tonumber(ARGV[6])
local not_after = tonumber(ARGV[7])
local not_after_text = ARGV[7]
local k = tonumber(ARGV[8])
local offsets, reaches, lows = {}, {}, {}
for j = 1, k do
  offsets[j] = tonumber(ARGV[7 + 2 * j])
  reaches[j] = tonumber(ARGV[8 + 2 * j])
  lows[j] = reaches[j] - 1
end
local run_token = ARGV[9 + 2 * k]
local numbers = {}
for word in string.gmatch(ARGV[10 + 2 * k], '%S+') do
  numbers[#numbers + 1] = word
end
local first_id = 11 + 2 * k
local width = run_token == '' and 3 or 2
-- Kept tallies say whether they carry sums: a redelivery asking otherwise gets fresh ones.
local marker = totals and 'T' or 'C'

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

-- A whole number below 2**53 as reply text: tostring is exact below 10**14, and cheaper.
local function exact(x)
  if x < 1e14 then
    return x
  end
  return fmt(x)
end

-- Values stored by this run are written with one HSET at its end: look them up here first.
local written = {}

-- The amounts of `ids` summed in four parts of six decimal digits (high to low).
local function sum_amounts(ids)
  local a, b, c, d = 0, 0, 0, 0
  for i = 1, #ids, 4000 do
    local values = redis.call('HMGET', amounts, unpack(ids, i, math.min(i + 3999, #ids)))
    for n, value in ipairs(values) do
      value = written[ids[i + n - 1]] or value
      if value then
        local units = string.match(value, '^(%d+)')
        local size = #units
        if size <= 6 then
          d = d + tonumber(units)
        else
          d = d + tonumber(string.sub(units, -6))
          if size <= 12 then
            c = c + tonumber(string.sub(units, 1, -7))
          else
            c = c + tonumber(string.sub(units, -12, -7))
            if size <= 18 then
              b = b + tonumber(string.sub(units, 1, -13))
            else
              b = b + tonumber(string.sub(units, -18, -13))
              a = a + tonumber(string.sub(units, 1, -19))
            end
          end
        end
      end
    end
  end
  return a, b, c, d
end

local state = redis.call('HMGET', meta, 'newest', 'first', 'trimmed')
local newest = tonumber(state[1])
local newest_text = state[1]
local first = tonumber(state[2])
local trimmed = tonumber(state[3])
local out = {first and fmt(first) or '-1'}
local changed, aside_added = false, false

-- Counting without a ZCOUNT per event. When a run comes in time order and starts no earlier
-- than the key's newest event, every window edge (event time - d) only moves forward during
-- the run: the stored events at or below each edge are counted once, the stored events the
-- edge passes during the run are fetched once, and both are counted off as it advances, with
-- the run's own new events. C(x), the members at or below x (x raised to SPLIT at least, so
-- that C(high) - C(low) counts event times only), then answers every window. Events after
-- not_after stay out of the windows and out of this order. (For fewer than three events the
-- fetches cost more than they save.) Whatever moves a stored member (an id remembered past
-- the memory, recorded again) ends the fast path for the rest of the run: ZCOUNT is exact.
local fast = not totals and #ARGV - first_id >= 2
local run_first, run_last
if fast then
  for e = first_id, #ARGV do
    local at = tonumber(numbers[(e - first_id) * width + 1])
    if not (not_after and at > not_after) then
      if (run_last and at < run_last) or (newest and at < newest) then
        fast = false
        break
      end
      run_first = run_first or at
      run_last = at
    end
  end
  fast = fast and run_first ~= nil
end
local edges, card, added = {}, 0, {}
if fast then
  card = redis.call('ZCARD', events)
  for j = 1, k do
    for _, d in ipairs({offsets[j], reaches[j]}) do
      if d > 0 and not edges[d] and fast then
        local low, high = math.max(run_first - d, SPLIT), math.max(run_last - d, SPLIT)
        local passed = redis.call('ZRANGEBYSCORE', events, '(' .. fmt(low), high,
                                  'WITHSCORES', 'LIMIT', 0, 2000)
        fast = #passed < 4000
        edges[d] = {below = redis.call('ZCOUNT', events, '-inf', low),
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

-- For an id already in the set: 'retry', the kind it was stored as ('L', 'F' or its amount)
-- and what follows its token, when this very delivery was stored before; else nil when it is
-- past the memory (forgotten), 'D' (duplicate) otherwise.
local function seen_status(id, token)
  local stored = written[id] or redis.call('HGET', amounts, id)
  local kind, rest
  if stored then
    local stored_token
    kind, stored_token, rest = string.match(stored, '^([^:]*):([^:]*):?(.*)$')
    if stored_token == token then
      return 'retry', kind, rest
    end
  end
  local record
  if kind == 'L' or kind == 'F' then
    record = tonumber(rest)
  else
    record = tonumber(redis.call('ZSCORE', events, id))
    if record < SPLIT then
      record = record + SHIFT
    end
  end
  if newest and record <= newest - memory then
    return nil
  end
  return 'D'
end

local CODE = {N = 0, D = 1, L = 2, F = 3}
local zeros = totals and 5 * k or k
-- The first new event of a run that is not a queue's also keeps the key's first event time
-- from before the run (after ">"): a run answered again reports that one, so every event of
-- it has the first_seen it had (the key's first may have moved earlier since).
local carry = width == 2

for e = first_id, #ARGV do
  local base = (e - first_id) * width
  local id = ARGV[e]
  local at = tonumber(numbers[base + 1])
  -- What a first arrival would be, and the score it is recorded with.
  local kind, score, record_text
  if not_after and at > not_after then
    kind, score, record_text = 'F', not_after - SHIFT, not_after_text
  elseif newest and at < newest - lateness then
    kind, score, record_text = 'L', newest - SHIFT, newest_text
  else
    kind, score = 'N', at
  end
  local status, stored_kind, rest
  if redis.call('ZADD', events, 'NX', score, id) == 1 then
    status = kind
  else
    status, stored_kind, rest = seen_status(id, token_of(e, base))
    if status == nil then
      redis.call('ZADD', events, score, id)
      status = kind
      fast = false
    end
  end
  if status == 'N' then
    if totals then
      written[id] = numbers[base + 2]  -- its own amount counts in its windows
    end
    if fast then
      added[#added + 1] = at
    end
    if not first or at < first then
      first = at
      changed = true
    end
    if not newest or at > newest then
      newest = at
      newest_text = numbers[base + 1]
      changed = true
    end
  elseif status == 'L' or status == 'F' then
    written[id] = status .. ':' .. token_of(e, base) .. ':' .. record_text
    aside_added = true
  elseif status == 'retry' then
    if stored_kind == 'L' or stored_kind == 'F' then
      status = stored_kind
    elseif string.sub(rest, 1, 1) == marker then
      status = 'kept'
    else
      status = 'again'
    end
  end
  if status == 'kept' then
    local text, before = string.match(rest, '^.([^>]*)>?(.*)$')
    if carry and before ~= '' then
      out[1] = before
    end
    carry = false
    out[#out + 1] = 0
    out[#out + 1] = text
  elseif status == 'N' or status == 'again' then
    local tallies = {}
    for j = 1, k do
      if totals then
        local low = at - lows[j]
        if low < SPLIT then
          low = SPLIT
        end
        local ids = redis.call('ZRANGEBYSCORE', events, low, at - offsets[j])
        local a, b, c, d = sum_amounts(ids)
        tallies[#tallies + 1] = #ids
        tallies[#tallies + 1] = exact(a)
        tallies[#tallies + 1] = exact(b)
        tallies[#tallies + 1] = exact(c)
        tallies[#tallies + 1] = exact(d)
      elseif fast and status == 'N' then
        tallies[#tallies + 1] = at_or_below(offsets[j], at) - at_or_below(reaches[j], at)
      else
        local low = at - lows[j]
        if low < SPLIT then
          low = SPLIT
        end
        tallies[#tallies + 1] = redis.call('ZCOUNT', events, low, at - offsets[j])
      end
    end
    local text = table.concat(tallies, ' ')
    out[#out + 1] = 0
    out[#out + 1] = text
    if status == 'N' then
      -- One concatenation: the amount, the token and the tallies answered.
      if width == 3 then
        written[id] = numbers[base + 2] .. ':' .. numbers[base + 3] .. ':' .. marker .. text
      elseif carry then
        written[id] = numbers[base + 2] .. ':' .. run_token .. '.' .. (e - first_id) .. ':'
          .. marker .. text .. '>' .. out[1]
        carry = false
      else
        written[id] = numbers[base + 2] .. ':' .. run_token .. '.' .. (e - first_id) .. ':'
          .. marker .. text
      end
    end
  else
    out[#out + 1] = CODE[status]
    for _ = 1, zeros do
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

-- Drop the members of ranks from..to (inclusive) and their values.
local function drop(from, to)
  local old = redis.call('ZRANGE', events, from, to)
  redis.call('ZREMRANGEBYRANK', events, from, to)
  for i = 1, #old, 4000 do
    redis.call('HDEL', amounts, unpack(old, i, math.min(i + 3999, #old)))
  end
end

if changed then
  local horizon = newest - memory
  local trim = not trimmed or horizon - trimmed >= keep / 8
  if trim then
    -- The set is two runs of ranks: late and future ids (by record time), then event times.
    -- Each run's part past the memory is a prefix of it; the newest `retain` events are kept.
    -- A late or future id is dropped once its rounded score is surely past the memory.
    local aside = redis.call('ZCOUNT', events, '-inf', SPLIT)
    local gone = 0
    if aside > 0 then
      gone = redis.call('ZCOUNT', events, '-inf', horizon - SHIFT - 1024)
    end
    local old = math.min(redis.call('ZCOUNT', events, SPLIT, horizon),
                         redis.call('ZCARD', events) - aside - retain)
    if gone == aside and old > 0 then
      drop(0, aside + old - 1)
    else
      if old > 0 then
        drop(aside, aside + old - 1)
      end
      if gone > 0 then
        drop(0, gone - 1)
      end
    end
    trimmed = horizon
  end
  -- Numbers, not text: Redis writes a script's numbers exactly, and string.format is dear.
  redis.call('HSET', meta, 'newest', newest, 'first', first, 'trimmed', trimmed)
  if trim then
    -- Idle keys expire; refreshing the time to live at each trim keeps it off the common path.
    redis.call('PEXPIRE', events, ttl)
    redis.call('PEXPIRE', amounts, ttl)
    redis.call('PEXPIRE', meta, ttl)
  end
elseif aside_added and not trimmed then
  -- A key whose first events were all in the future: its keys expire like any other's.
  redis.call('PEXPIRE', events, ttl)
  redis.call('PEXPIRE', amounts, ttl)
end
return table.concat(out, ' ')
