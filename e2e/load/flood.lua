-- wrk body for a flood at a steady rate: each connection waits a fixed
-- pause after every answer, so -c connections send about -c × 1000 / pause
-- requests a second while answers are fast. Paths are asked in turn.
--   wrk -t1 -c42 -d12s -s e2e/load/flood.lua http://127.0.0.1:18181 -- 10 /s/demo.js
wrk.headers["Accept-Encoding"] = "gzip, deflate, br"
local pause, paths, i = 10, {}, 0
function init(args)
  pause = tonumber(args[1])
  for j = 2, #args do paths[#paths + 1] = args[j] end
end
function delay() return pause end
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
