-- Part of observe.lua (see there): its arguments read, its constants and its helpers. The
-- store loads observe_setup.lua, observe_answer.lua and observe.lua as one script.

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
for j = 1, 2 * k do
  local d = tonumber(ARGV[9 + j])
  if j % 2 == 1 then
    offsets[(j + 1) / 2] = d
  else
    reaches[j / 2], lows[j / 2] = d, d - 1
  end
  if not place_of[d] then
    nd = nd + 1
    distances[nd] = d
    place_of[d] = true
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
local ASIDE = setmetatable({}, {__index = function(aside, code)
  aside[code] = code .. string.rep(' 0', zeros)
  return aside[code]
end})
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
