-- POST /v1/orders with a fresh Idempotency-Key per request: each one creates an order
-- (and an order.created event through the outbox), never an idempotent replay.
--
--   ORDERMESH_TOKEN=<jwt> wrk -t1 -c32 -d30s -s bench/lua/create_order.lua http://127.0.0.1:8080
--
-- ORDERMESH_ORDER_BODY  the JSON body (default: one line item in EUR)
-- ORDERMESH_MAX_REQUESTS  stop each thread after this many responses, printing the line
--                         `wrk-thread-done` (a burst of a known size). wrk itself runs
--                         until -d is over: the caller may end it with SIGINT (Ctrl-C),
--                         which still prints the report.
-- ORDERMESH_RUN_ID      prefix of the keys (default: from the clock), unique per run
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local summary = require("summary")

local token = assert(os.getenv("ORDERMESH_TOKEN"), "set ORDERMESH_TOKEN to a bearer token")
local body = os.getenv("ORDERMESH_ORDER_BODY")
  or '{"currency": "EUR", "items": [{"sku": "tea", "quantity": 2, "unit_price_minor": 450}]}'
local limit = tonumber(os.getenv("ORDERMESH_MAX_REQUESTS") or "")
math.randomseed(os.time() + math.floor(os.clock() * 1e6))
local run = os.getenv("ORDERMESH_RUN_ID") or string.format("%x-%06x", os.time(), math.random(0, 0xffffff))

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads) -- a global of that thread's own Lua state
end

local sent, answered = 0, 0
local headers = {
  ["Authorization"] = "Bearer " .. token,
  ["Content-Type"] = "application/json",
}

function request()
  sent = sent + 1
  -- Threads share no state, so the thread's number keeps their keys apart.
  headers["Idempotency-Key"] = string.format("%s-%d-%d", run, thread_number or 0, sent)
  return wrk.format("POST", "/v1/orders", headers, body)
end

if limit then
  function response()
    answered = answered + 1
    if answered == limit then
      io.write("wrk-thread-done\n")
      io.flush()
      wrk.thread:stop()
    end
  end
end

done = summary.done
