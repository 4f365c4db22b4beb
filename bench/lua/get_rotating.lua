-- GET requests rotating through many customers' tokens and their order ids or cursors:
-- read by id, a page of the list, or a summary, without measuring a cache.
--
--   ORDERMESH_PAIRS=pairs.txt ORDERMESH_PATH='/v1/orders/%s' \
--     wrk -t1 -c256 -d10s --latency -s bench/lua/get_rotating.lua http://127.0.0.1:8080
--
-- ORDERMESH_PAIRS  a file of "<token> <value>" lines: each token's subject owns the value
-- ORDERMESH_PATH   the path, with %s for the value: /v1/orders/%s, /v1/orders/%s/summary,
--                  /v1/orders?limit=20&cursor=%s
-- Statuses are counted (see summary.lua); a token per customer keeps each subject far
-- below the gateway's per-subject rate limit.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local summary = require("summary")
local rotation = require("rotation")

local items = rotation.load("ORDERMESH_PAIRS")
local template = assert(os.getenv("ORDERMESH_PATH"), "set ORDERMESH_PATH, e.g. /v1/orders/%s")
local requests, n = {}, 0

setup = summary.setup
response = summary.response
done = summary.done

function init()
  -- Formatted once (wrk.format needs the Host header that wrk.init has set by now).
  for i, item in ipairs(items) do
    local headers = { ["Authorization"] = "Bearer " .. item.token }
    requests[i] = wrk.format("GET", string.format(template, item.value), headers)
  end
  n = rotation.start(items)
end

function request()
  n = n % #requests + 1
  return requests[n]
end
