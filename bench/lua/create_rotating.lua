-- POST /v1/orders rotating through many subjects' tokens, a fresh Idempotency-Key per
-- request: each one creates an order (and its order.created event), never a replay.
--
--   ORDERMESH_TOKENS=tokens.txt wrk -t1 -c64 -d10s --latency \
--     -s bench/lua/create_rotating.lua http://127.0.0.1:8080
--
-- ORDERMESH_TOKENS      a file of bearer tokens, one a line
-- ORDERMESH_ORDER_BODY  the JSON body (default: one line item in EUR)
-- ORDERMESH_RUN_ID      prefix of the keys (default: from the clock), unique per run
-- Statuses are counted (see summary.lua).
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local summary = require("summary")
local rotation = require("rotation")

local tokens = rotation.load("ORDERMESH_TOKENS", false)
local body = os.getenv("ORDERMESH_ORDER_BODY")
  or '{"currency": "EUR", "items": [{"sku": "tea", "quantity": 2, "unit_price_minor": 450}]}'
math.randomseed(os.time() + math.floor(os.clock() * 1e6))
local run = os.getenv("ORDERMESH_RUN_ID") or string.format("%x-%06x", os.time(), math.random(0, 0xffffff))
local sent, n = 0, 0
local headers = { ["Content-Type"] = "application/json" }

setup = summary.setup
response = summary.response
done = summary.done

function init()
  n = rotation.start(tokens)
end

function request()
  sent = sent + 1
  n = n % #tokens + 1
  headers["Authorization"] = "Bearer " .. tokens[n].token
  -- Threads share no state, so the thread's number keeps their keys apart.
  headers["Idempotency-Key"] = string.format("%s-%d-%d", run, thread_number or 0, sent)
  return wrk.format("POST", "/v1/orders", headers, body)
end
