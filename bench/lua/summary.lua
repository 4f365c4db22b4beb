-- The end of a run as one line a program can parse (wrk's own report is for people):
--   wrk-summary {"requests": ..., "non_2xx_3xx": ..., ...}
-- `requests` counts completed responses; `non_2xx_3xx` those with another status.
local M = {}

function M.done(summary, latency)
  local errors = summary.errors
  io.write(string.format(
    'wrk-summary {"requests": %d, "duration_us": %d, "non_2xx_3xx": %d, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, errors.status, errors.connect, errors.read,
    errors.write, errors.timeout, latency:percentile(50), latency:percentile(99)
  ))
end

return M
