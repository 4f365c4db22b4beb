-- GET /v1/orders/{id} with a bearer token: the gateway's read path (authentication,
-- rate limit, shedding, one gRPC call to orders and its database read).
--
--   ORDERMESH_TOKEN=<jwt> ORDERMESH_ORDER_ID=<order id> \
--     wrk -t1 -c64 -d10s -s bench/lua/get_order.lua http://127.0.0.1:8080
--
-- The token's subject must own the order (else 404s) and have its rate limit lifted
-- (GATEWAY_RATE_LIMIT_PER_SECOND / _BURST), else most answers are 429s.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local summary = require("summary")

local token = assert(os.getenv("ORDERMESH_TOKEN"), "set ORDERMESH_TOKEN to a bearer token")
local order_id = assert(os.getenv("ORDERMESH_ORDER_ID"), "set ORDERMESH_ORDER_ID")

wrk.method = "GET"
wrk.path = "/v1/orders/" .. order_id
wrk.headers["Authorization"] = "Bearer " .. token

done = summary.done
