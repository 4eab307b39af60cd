-- wrk body for GET /api/v1/consents/{id}: an auditor's look-up of random
-- visitors. Give it a file of consent IDs, one a line, and the admin token:
--   wrk -t1 -c64 -d10s -s e2e/load/lookup.lua http://127.0.0.1:18181 -- ids.txt TOKEN
local ids = {}
local token
function init(args)
  for line in io.lines(args[1]) do ids[#ids + 1] = line end
  token = args[2]
  math.randomseed(os.time())
end
function request()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", "/api/v1/consents/" .. id, {["Authorization"] = "Bearer " .. token})
end
function done(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
