-- Part of observe.lua (see there): the runs the server answers itself, a fresh run off its
-- window edges and any other event by event. Loaded after observe_setup.lua.

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
