-- Record runs of events, one run per key, and tally intervals ending at each event's time.
--
-- KEYS: two per run, in the order of the runs:
--   events  (ZSET: member = event id, score = the time the id was recorded at, below)
--   amounts (HASH: event id -> "units:token:tallies" for an event in the windows, the tallies
--            it was answered with after "T" (with sums) or "C" (counts only); "L:token:record"
--            or "F:token:record" for a late or a future one; and, under the empty field (no
--            event id is empty), the key's state: "newest first trimmed version", "-" for none)
-- ARGV[1] allowed lateness, ARGV[2] keep (lateness + longest reach), ARGV[3] memory (how long
-- an id is remembered: the dedup horizon, at least keep), ARGV[4] "1" for totals, ARGV[5] ttl
-- in ms, ARGV[6] retain, ARGV[7] not_after ("" for none), ARGV[8] the call's nonce, ARGV[9]
-- number of intervals k, then k pairs (offset, reach), then the call's token, then per run: its
-- number, its size r, its mode, and r events of three arguments each (id, at, units). An empty
-- call token says each event brings its own delivery token, as a fourth argument; an event's
-- token is otherwise "call.run.place" (its run's number, its place in the run from 0).
--
-- A run's mode: "-" (answer it), "+" (answer it and tell its key's windows: below) or a
-- version: the client vouches for the answers, from its copy of the key's windows at that
-- version. Every run that records anything gives its key a new version, "nonce.run". When the
-- key is at that version ("~": the key has no state) and every id of the run is new and comes
-- once, the run is recorded as it stands: the third argument of an event in the windows is the
-- value to store for it (its units, token and tallies, as below), the client's answer. Else the
-- run is answered here (its third arguments begin with the units) and its key's windows told.
--
-- Reply: one string of words separated by spaces. Per run: "v" for a run recorded as vouched;
-- else the key's first event time before the run (-1 for none), then per event its status (0
-- new, 1 duplicate, 2 late, 3 future) and per interval its count (and, with totals, the sum as
-- four exact parts, high to low, each part summing six decimal digits of the amounts: Lua's
-- numbers are doubles, and 2**32 members of a sorted set times 10**6 stays below 2**53). The
-- key's windows, when told, follow: "R", then "!" when there are too many to tell, else its
-- version ("~" for none), newest and first event times (or "-"), the number of events after
-- newest - keep and, for each, its time and its units.
--
-- One sorted set holds both the windows and the remembered ids. An event in the windows is
-- scored by its event time. A late or future event, remembered but outside the windows, is
-- scored by its record time (the key's newest, or not_after) minus 2**62: every such score lies
-- below SPLIT and every event time above it (the client keeps times within 2**60), so the
-- windows never see them. Those scores are rounded (to 512 or 1,024 microseconds), so the exact
-- record time lives in the amounts hash; the score only orders them for trimming. Every id in
-- the sorted set is in the hash and the other way round (the key's state and EDGE aside).
--
-- A duplicate whose stored token equals the arriving token is the same delivery retried (a
-- run resent after a dropped connection, a batch named again after a failure, a queue's entry
-- redelivered): it is answered as the first time, late, future, or new with the tallies it was
-- answered with (kept with its token: events recorded since, ties later in its own run among
-- them, would change fresh ones), even past the horizon: the newest `retain` events of a key
-- are never trimmed, so a redelivered run of up to that many events per key is found. Kept
-- tallies of the other kind (counts asked, sums kept) are made afresh.
--
-- Cost: every redis.call, string.format and new string is dear in Redis's Lua. A vouched run
-- costs one HGET (the key's state), one ZADD and one HSET whatever its size. Else:
-- - a fresh run (counts only, at least two events in the windows, every id new and once, the
--   events in time order from the key's newest on) costs those and the window edges (below);
-- - any other run goes event by event: one ZADD NX each, its windows counted with one ZCOUNT
--   per interval (numeric bounds: times are integers, so the exclusive lower bound t is the
--   inclusive t + 1), or summed with ZRANGEBYSCORE and HMGET; one HSET at the end.
-- What the memory no longer covers is trimmed once an eighth of it has passed, and an id past
-- the memory but not yet trimmed is treated exactly as a forgotten one.

local SHIFT = 2 ^ 62
local SPLIT = -(2 ^ 61)
local STATE = ''
-- Redis keeps a small hash or sorted set as a listpack, which it scans to find a field or a
-- member: a key's hash and set would cost a scan per event until they hold 512 and 128 ids.
-- Each gets a string longer than a listpack's (64 bytes) when the key's state is first
-- written, which makes them a hash table and a skip list from the start: the state is padded,
-- and the set holds an EDGE member at +inf, which no query reaches (their upper bounds are
-- below +inf), named by bytes that no UTF-8 text (an id) has.
local PAD = ' ' .. string.rep('.', 64)
local EDGE = string.rep('\255', 65)
local TOP = '(+inf'
local TELL = 100000  -- the most event times told of a key's windows
local STEP = 3998  -- arguments per redis.call at most (even: pairs stay whole), for unpack

local lateness = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local memory = tonumber(ARGV[3])
local totals = ARGV[4] == '1'
local ttl = tonumber(ARGV[5])
local retain = tonumber(ARGV[6])
local not_after = tonumber(ARGV[7])
local not_after_text = ARGV[7]
local nonce = ARGV[8]
local k = tonumber(ARGV[9])
local offsets, reaches, lows = {}, {}, {}
-- The distinct distances back from an event time to its windows' edges, ascending, and each
-- interval's edges as places in that list.
local distances, place_of = {}, {}
local nd = 0
for j = 1, k do
  offsets[j] = tonumber(ARGV[8 + 2 * j])
  reaches[j] = tonumber(ARGV[9 + 2 * j])
  lows[j] = reaches[j] - 1
  for _, d in ipairs({offsets[j], reaches[j]}) do
    if not place_of[d] then
      nd = nd + 1
      distances[nd] = d
      place_of[d] = true
    end
  end
end
table.sort(distances)
for n = 1, nd do
  place_of[distances[n]] = n
end
local upper, lower = {}, {}
for j = 1, k do
  upper[j], lower[j] = place_of[offsets[j]], place_of[reaches[j]]
end
local call_token = ARGV[10 + 2 * k]
local width = call_token == '' and 4 or 3
-- Kept tallies say whether they carry sums: a redelivery asking otherwise gets fresh ones.
local marker = totals and 'T' or 'C'
local zeros = totals and 5 * k or k
-- The reply of an event that is not new (1 duplicate, 2 late, 3 future): its code, zeros.
local ASIDE = {}
for code = 1, 3 do
  ASIDE[code] = code .. string.rep(' 0', zeros)
end
local CODE = {D = 1, L = 2, F = 3}

-- Text of small whole numbers, made once (turning a number into text is dear).
local TEXT = {}
local function text_of(x)
  local text = tostring(x)
  if x >= 0 and x < 65536 then
    TEXT[x] = text
  end
  return text
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

-- redis.call(command, key, [flag,] ...values) in slices that unpack can take; replies summed.
local function call_all(command, key, values, n, flag)
  local total = 0
  for i = 1, n, STEP do
    local last = math.min(i + STEP - 1, n)
    if flag then
      total = total + redis.call(command, key, flag, unpack(values, i, last))
    else
      total = total + redis.call(command, key, unpack(values, i, last))
    end
  end
  return total
end

-- The amounts of `ids` summed in four parts of six decimal digits (high to low); `written`
-- holds the values this run stores at its end.
local function sum_amounts(amounts, ids, written)
  local a, b, c, d = 0, 0, 0, 0
  for i = 1, #ids, STEP do
    local values = redis.call('HMGET', amounts, unpack(ids, i, math.min(i + STEP - 1, #ids)))
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

-- The reply, and how long it is (the length operator costs a search on every use).
local out, nout = {}, 0

local function put(x)
  nout = nout + 1
  out[nout] = x
end

-- The units of the event whose arguments start at `base`: a vouched run's third arguments
-- begin with them.
local vouched_units = false
local function units_of(base)
  if vouched_units then
    return string.match(ARGV[base + 2], '^%d+')
  end
  return ARGV[base + 2]
end

-- The window edges of a fresh run: for each distance (by place), the stored event times above
-- run_first - d (`above`) and those the edge passes during the run (`passed`: member, score
-- pairs). nil when a fetch would be too long (the run then goes event by event).
local function fetch_edges(events, run_first, run_last, size)
  local passed, above = {}, {}
  for n = 1, nd do
    local d = distances[n]
    if d > 0 then
      local low = math.max(run_first - d, SPLIT) + 1
      if n == 1 or distances[n - 1] == 0 then
        -- The nearest edge: everything above it at once, when that is short (it usually is).
        local limit = 16 + 4 * size
        local got = redis.call('ZRANGEBYSCORE', events, low, TOP, 'WITHSCORES', 'LIMIT', 0,
                               limit)
        if #got < 2 * limit then
          passed[n], above[n] = got, #got / 2
        end
      end
      if not passed[n] then
        local got = redis.call('ZRANGEBYSCORE', events, low, math.max(run_last - d, SPLIT),
                               'WITHSCORES', 'LIMIT', 0, 2000)
        if #got >= 4000 then
          return nil
        end
        passed[n], above[n] = got, redis.call('ZCOUNT', events, low, TOP)
      end
    end
  end
  return passed, above
end

-- A fresh run, its members recorded: `ats` are its event times (nil for a future event). The
-- reply goes to `out`, the values to store to `values` (returns their number).
local function fresh_run(from, size, ats, passed, above, token_prefix, first_before, values)
  local nv = 0
  -- Per distance: the stored members above the edge, where the edge is in `passed` and the
  -- next score it passes; this run's events at or below the edge, and the next one.
  local at_i, next_score, mine, mi = {}, {}, {}, {}
  for n = 1, nd do
    if distances[n] > 0 then
      at_i[n], next_score[n], mine[n], mi[n] = 2, tonumber(passed[n][2]), 0, 1
    end
  end
  local added, nadded = {}, 0
  -- v[n]: this run's events at or below the edge at distance n, less the stored ones above
  -- it; an interval's count is v at its upper edge less v at its lower one.
  local v = {}
  -- A call's run (not a queue's) keeps the key's first event time from before it with its
  -- first new event (after ">"): a run answered again reports that one, so every event of it
  -- has the first_seen it had (the key's first may have moved earlier since).
  local carry = width == 3
  for e = 0, size - 1 do
    local base = from + e * width
    local id, at = ARGV[base], ats[e]
    local token
    if width == 4 then
      token = ARGV[base + 3]
    else
      token = token_prefix .. (TEXT[e] or text_of(e))
    end
    nv = nv + 2
    values[nv - 1] = id
    if at == nil then
      values[nv] = 'F:' .. token .. ':' .. not_after_text
      put(ASIDE[3])
    else
      nadded = nadded + 1
      added[nadded] = at
      for n = 1, nd do
        local d = distances[n]
        if d > 0 then
          local x = at - d
          local nx = next_score[n]
          if nx and nx <= x then
            local list, i, a = passed[n], at_i[n], above[n]
            repeat
              a = a - 1
              i = i + 2
              nx = tonumber(list[i])
            until not nx or nx > x
            above[n], at_i[n], next_score[n] = a, i, nx
          end
          local j = mi[n]
          if j <= nadded and added[j] <= x then
            local c = mine[n]
            repeat
              c = c + 1
              j = j + 1
            until j > nadded or added[j] > x
            mine[n], mi[n] = c, j
          end
          v[n] = mine[n] - above[n]
        else
          v[n] = nadded
        end
      end
      local tallies = {}
      for j = 1, k do
        local c = v[upper[j]] - v[lower[j]]
        tallies[j] = TEXT[c] or text_of(c)
      end
      local text = table.concat(tallies, ' ')
      put(0)
      put(text)
      local units = units_of(base)
      if carry then
        values[nv] = units .. ':' .. token .. ':' .. marker .. text .. '>' .. first_before
        carry = false
      else
        values[nv] = units .. ':' .. token .. ':' .. marker .. text
      end
    end
  end
  return nv
end

-- Any other run, event by event. Returns the number of values to store, the key's newest and
-- first (as numbers and text), whether it recorded anything and whether a late or future id.
local function each_event(events, amounts, from, size, token_prefix, head, values, key)
  local newest, newest_text, first, first_text = key.newest, key.newest_text, key.first,
    key.first_text
  local written = {}
  local wrote, aside_added = false, false

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

  local carry = width == 3
  for e = 0, size - 1 do
    local base = from + e * width
    local id, at_text, units = ARGV[base], ARGV[base + 1], units_of(base)
    local at = tonumber(at_text)
    local token = width == 4 and ARGV[base + 3] or token_prefix .. e
    -- What a first arrival would be, and the score it is recorded with.
    local kind, score, record_text
    if not_after and at > not_after then
      kind, score, record_text = 'F', not_after - SHIFT, not_after_text
    elseif newest and at < newest - lateness then
      kind, score, record_text = 'L', newest - SHIFT, newest_text
    else
      kind, score = 'N', at_text
    end
    local status, stored_kind, rest
    if redis.call('ZADD', events, 'NX', score, id) == 1 then
      status = kind
    else
      status, stored_kind, rest = seen_status(id, token)
      if status == nil then
        redis.call('ZADD', events, score, id)
        status = kind
      end
    end
    if status == 'N' then
      wrote = true
      if totals then
        written[id] = units  -- its own amount counts in its windows
      end
      if not first or at < first then
        first, first_text = at, at_text
      end
      if not newest or at > newest then
        newest, newest_text = at, at_text
      end
    elseif status == 'L' or status == 'F' then
      written[id] = status .. ':' .. token .. ':' .. record_text
      wrote, aside_added = true, true
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
        out[head] = before
      end
      carry = false
      put(0)
      put(text)
    elseif status == 'N' or status == 'again' then
      local tallies = {}
      for j = 1, k do
        local low = at - lows[j]
        if low < SPLIT then
          low = SPLIT
        end
        if totals then
          local ids = redis.call('ZRANGEBYSCORE', events, low, at - offsets[j])
          local a, b, c, d = sum_amounts(amounts, ids, written)
          tallies[#tallies + 1] = #ids
          tallies[#tallies + 1] = exact(a)
          tallies[#tallies + 1] = exact(b)
          tallies[#tallies + 1] = exact(c)
          tallies[#tallies + 1] = exact(d)
        else
          tallies[#tallies + 1] = redis.call('ZCOUNT', events, low, at - offsets[j])
        end
      end
      local text = table.concat(tallies, ' ')
      put(0)
      put(text)
      if status == 'N' then
        -- One concatenation: the amount, the token and the tallies answered.
        if carry then
          written[id] = units .. ':' .. token .. ':' .. marker .. text .. '>' .. out[head]
          carry = false
        else
          written[id] = units .. ':' .. token .. ':' .. marker .. text
        end
      end
    else
      put(ASIDE[CODE[status]])
    end
  end
  local nv = 0
  for id, value in pairs(written) do
    values[nv + 1], values[nv + 2] = id, value
    nv = nv + 2
  end
  return nv, newest, newest_text, first, first_text, wrote, aside_added
end

-- Undo a ZADD NX of a run's ids: those not in the hash were not in the set either before it.
local function undo_added(events, amounts, from, size)
  local ids, gone = {}, {}
  for e = 0, size - 1 do
    ids[e + 1] = ARGV[from + e * width]
  end
  for i = 1, size, STEP do
    local got = redis.call('HMGET', amounts, unpack(ids, i, math.min(i + STEP - 1, size)))
    for n = 1, #got do
      if not got[n] then
        gone[#gone + 1] = ids[i + n - 1]
      end
    end
  end
  call_all('ZREM', events, gone, #gone)
end

-- Record a fresh run's members at once. False, and nothing recorded, when one of its ids was
-- in the set already or comes twice.
local function record_fresh(events, amounts, from, size, ats)
  local members = {}
  for e = 0, size - 1 do
    local base = from + e * width
    members[2 * e + 1] = ats[e] and ARGV[base + 1] or not_after - SHIFT
    members[2 * e + 2] = ARGV[base]
  end
  if call_all('ZADD', events, members, 2 * size, 'NX') == size then
    return true
  end
  undo_added(events, amounts, from, size)
  return false
end

-- A vouched run: recorded with the values the client made, when its ids are new and once.
-- Returns the number of values, the key's newest and first (numbers and text) and whether a
-- late or future id was added; nil, and nothing recorded, when an id was not new.
local function vouched_run(events, amounts, from, size, number, key, values)
  local newest, newest_text, first, first_text = key.newest, key.newest_text, key.first,
    key.first_text
  local members, nv, aside_added = {}, 0, false
  for e = 0, size - 1 do
    local base = from + e * width
    local id, at_text = ARGV[base], ARGV[base + 1]
    local at = tonumber(at_text)
    values[nv + 1] = id
    members[nv + 2] = id
    if not_after and at > not_after then
      local token = width == 4 and ARGV[base + 3] or call_token .. '.' .. number .. '.' .. e
      members[nv + 1] = not_after - SHIFT
      values[nv + 2] = 'F:' .. token .. ':' .. not_after_text
      aside_added = true
    elseif newest and at < newest - lateness then
      local token = width == 4 and ARGV[base + 3] or call_token .. '.' .. number .. '.' .. e
      members[nv + 1] = newest - SHIFT
      values[nv + 2] = 'L:' .. token .. ':' .. newest_text
      aside_added = true
    else
      members[nv + 1] = at_text
      values[nv + 2] = ARGV[base + 2]
      if not newest or at > newest then
        newest, newest_text = at, at_text
      end
      if not first or at < first then
        first, first_text = at, at_text
      end
    end
    nv = nv + 2
  end
  if call_all('ZADD', events, members, nv, 'NX') == size then
    return nv, newest, newest_text, first, first_text, aside_added
  end
  undo_added(events, amounts, from, size)
  return nil
end

-- Drop the members of ranks from..to (inclusive) and their values.
local function drop(events, amounts, from, to)
  local old = redis.call('ZRANGE', events, from, to)
  call_all('HDEL', amounts, old, #old)
  redis.call('ZREMRANGEBYRANK', events, from, to)
end

local function observe_run(events, amounts, number, from, size, mode)
  local state = redis.call('HGET', amounts, STATE)
  local key = {}
  local trimmed, trimmed_text, version = nil, '-', '~'
  if state then
    local newest_text, first_text
    newest_text, first_text, trimmed_text, version = string.match(
      state, '^(%S+) (%S+) (%S+) (%S+)')
    key.newest, key.first, trimmed = tonumber(newest_text), tonumber(first_text),
      tonumber(trimmed_text)
    if key.newest then
      key.newest_text = newest_text
    end
    if key.first then
      key.first_text = first_text
    end
  end
  local values = {}
  local nv, newest, newest_text, first, first_text, aside_added
  local wrote = true
  local tell = mode == '+'
  if mode ~= '-' and not tell then
    if mode == version then
      nv, newest, newest_text, first, first_text, aside_added =
        vouched_run(events, amounts, from, size, number, key, values)
    end
    if nv then
      put('v')
    else
      vouched_units, tell = true, true
    end
  end
  if not nv then
    local token_prefix = call_token .. '.' .. number .. '.'
    put(key.first_text or '-1')
    local head = nout
    -- A fresh run: counts only, at least two events in the windows, in time order from the
    -- key's newest on (fewer, and the edges cost more than they save); its ids new and once.
    local ats, inside = {}, 0
    local run_first, run_last, run_first_text, run_last_text
    local fresh = not totals and size >= 2
    if fresh then
      for e = 0, size - 1 do
        local text = ARGV[from + e * width + 1]
        local at = tonumber(text)
        if not (not_after and at > not_after) then
          if (run_last and at < run_last) or (key.newest and at < key.newest) then
            fresh = false
            break
          end
          ats[e] = at
          inside = inside + 1
          if not run_first then
            run_first, run_first_text = at, text
          end
          run_last, run_last_text = at, text
        end
      end
    end
    local passed, above
    if fresh and inside >= 2 then
      passed, above = fetch_edges(events, run_first, run_last, size)
    end
    if passed and record_fresh(events, amounts, from, size, ats) then
      nv = fresh_run(from, size, ats, passed, above, token_prefix, out[head], values)
      newest, newest_text = run_last, run_last_text
      first, first_text = key.first, key.first_text
      if not first then
        first, first_text = run_first, run_first_text
      end
      aside_added = inside < size
    else
      nv, newest, newest_text, first, first_text, wrote, aside_added =
        each_event(events, amounts, from, size, token_prefix, head, values, key)
    end
    vouched_units = false
  end

  local trim = false
  if wrote then
    if newest and newest ~= key.newest then
      local horizon = newest - memory
      trim = not trimmed or horizon - trimmed >= memory / 8
      if trim then
        trimmed, trimmed_text = horizon, fmt(horizon)
      end
    end
    version = nonce .. '.' .. number
    values[nv + 1] = STATE
    values[nv + 2] = (newest_text or '-') .. ' ' .. (first_text or '-') .. ' ' .. trimmed_text
      .. ' ' .. version .. PAD
    nv = nv + 2
    if not state then
      redis.call('ZADD', events, '+inf', EDGE)
    end
  end
  call_all('HSET', amounts, values, nv)
  if trim then
    -- The set is two runs of ranks: late and future ids (by record time), then event times.
    -- Each run's part past the memory is a prefix of it; the newest `retain` events are kept.
    -- A late or future id is dropped once its rounded score is surely past the memory.
    local aside = redis.call('ZCOUNT', events, '-inf', SPLIT)
    local gone = 0
    if aside > 0 then
      gone = redis.call('ZCOUNT', events, '-inf', trimmed - SHIFT - 1024)
    end
    local old = math.min(redis.call('ZCOUNT', events, SPLIT, trimmed),
                         redis.call('ZCOUNT', events, SPLIT, TOP) - retain)
    if gone == aside and old > 0 then
      drop(events, amounts, 0, aside + old - 1)
    else
      if old > 0 then
        drop(events, amounts, aside, aside + old - 1)
      end
      if gone > 0 then
        drop(events, amounts, 0, gone - 1)
      end
    end
    -- Idle keys expire; refreshing the time to live at each trim keeps it off the common path.
    redis.call('PEXPIRE', events, ttl)
    redis.call('PEXPIRE', amounts, ttl)
  elseif aside_added and not trimmed then
    -- A key whose first events were all in the future: its keys expire like any other's.
    redis.call('PEXPIRE', events, ttl)
    redis.call('PEXPIRE', amounts, ttl)
  end

  if tell then
    put('R')
    newest = newest or key.newest
    local low = newest and math.max(newest - keep, SPLIT) + 1 or SPLIT
    local count = redis.call('ZCOUNT', events, low, TOP)
    if count > TELL then
      put('!')
    else
      put(version)
      put(newest_text or key.newest_text or '-')
      put(first_text or key.first_text or '-')
      put(count)
      local got = redis.call('ZRANGEBYSCORE', events, low, TOP, 'WITHSCORES')
      local ids = {}
      for i = 1, #got, 2 do
        ids[#ids + 1] = got[i]
      end
      for i = 1, #ids, STEP do
        local held = redis.call('HMGET', amounts, unpack(ids, i, math.min(i + STEP - 1, #ids)))
        for n = 1, #held do
          put(got[2 * (i + n - 1)])
          put(string.match(held[n], '^%d+'))
        end
      end
    end
  end
end

local arg = 11 + 2 * k
for r = 1, #KEYS, 2 do
  local size = tonumber(ARGV[arg + 1])
  observe_run(KEYS[r], KEYS[r + 1], ARGV[arg], arg + 3, size, ARGV[arg + 2])
  arg = arg + 3 + size * width
end
return table.concat(out, ' ', 1, nout)
