-- Many (token, value) pairs to rotate through, so concurrent requests differ: the
-- gateway coalesces identical reads in flight, and wrk hammering one id or one
-- customer's first page would measure that cache instead of the read path.
--
-- The file named by the variable holds one pair a line, "<token> <value>" (a bearer
-- token and an order id or a cursor; bench/harness writes them, shuffled), or one token
-- a line for load() with values = false. Each thread starts at a random place in it.
local M = {}

function M.load(variable, values)
  local name = assert(os.getenv(variable), "set " .. variable .. " to a file of pairs")
  local items = {}
  for line in io.lines(name) do
    local token, value = line:match("^(%S+)%s*(%S*)$")
    if token and (value ~= "" or values == false) then
      items[#items + 1] = { token = token, value = value }
    end
  end
  assert(#items > 0, name .. " holds no pairs")
  return items
end

function M.start(items)
  math.randomseed((thread_number or 1) * 7919 + os.time())
  return math.random(#items) - 1
end

return M
