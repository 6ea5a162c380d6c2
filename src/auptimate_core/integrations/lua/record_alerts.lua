-- Append alerts to the alert log, each at most once, by its key.
--
-- KEYS[1] the alert log (STREAM), then one key per alert marking it as logged (STRING).
-- ARGV[1] how long a mark is kept, in ms; then one JSON payload per alert, in KEYS order.
-- Reply: per alert 1 if it was appended now, 0 if it had been logged before.
--
-- Marking and appending in one script is what makes a redelivered alert (its worker died
-- after raising it, before acknowledging its transactions) land in the log exactly once.

local ttl = tonumber(ARGV[1])
local out = {}
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'PX', ttl) then
    redis.call('XADD', KEYS[1], '*', 'alert', ARGV[i])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
