-- Record runs of events, one run per key, and tally intervals ending at each event's time.
-- The script is three files, loaded as one in this order: observe_setup.lua (the arguments
-- read, constants, helpers), observe_answer.lua (the runs the server answers itself) and
-- this one (vouched runs, the key's state, trimming, telling, the loop over the runs).
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
-- else the key's first event time before the run ("-" for none), then per event its status (0
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
    -- A key without state has no events either (unless the store's older layout wrote them).
    if mode == version and (state or redis.call('EXISTS', events) == 0) then
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
    put(key.first_text or '-')
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
          put(held[n] and string.match(held[n], '^%d+') or 0)
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
