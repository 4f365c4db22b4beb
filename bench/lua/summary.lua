-- The end of a run as one line a program can parse (wrk's own report is for people):
--   wrk-summary {"requests": ..., "non_2xx_3xx": ..., ...}
-- `requests` counts completed responses; `non_2xx_3xx` those with another status.
--
-- A script that also sets `setup = summary.setup` and `response = summary.response`
-- gets "statuses": {"200": n, "503": n, ...} on that line, counted in each thread and
-- summed here, so designed refusals (503 sheds) can be told apart from errors. Without
-- them the line has no "statuses" (wrk only parses bodies for scripts with a response()).
local M = {}
local threads = {}

function M.setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_number", #threads) -- a global of that thread's own Lua state
end

function M.response(status)
  -- A global of the thread's Lua state: done() runs in another state and reads it back.
  statuses = statuses or {}
  statuses[status] = (statuses[status] or 0) + 1
end

local function status_counts()
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses") or {}) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    parts[#parts + 1] = string.format('"%d": %d', status, n)
  end
  return ', "statuses": {' .. table.concat(parts, ", ") .. "}"
end

function M.done(summary, latency)
  local errors = summary.errors
  io.write(string.format(
    'wrk-summary {"requests": %d, "duration_us": %d, "non_2xx_3xx": %d, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, '
      .. '"p99_us": %d, "max_us": %d%s}\n',
    summary.requests, summary.duration, errors.status, errors.connect, errors.read,
    errors.write, errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, #threads > 0 and status_counts() or ""
  ))
end

return M
