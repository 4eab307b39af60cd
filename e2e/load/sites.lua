-- wrk script: first choices spread over many sites, POSTed to the
-- site-addressed route (POST /api/v1/sites/{site}/consents) as the banner
-- does. The number of sites is wrk's first argument after "--" (default
-- 1000), the first site's number the second (default 0): the sites are
-- s{first} … s{first+n-1} (e2e/load/pg.sh makes the config of s0 … s999).
local n, first = 1000, 0
function init(args)
  n = tonumber(args[1] or "1000")
  first = tonumber(args[2] or "0")
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end
local body = '{"consent_id":null,"token":null,' ..
  '"choices":{"necessary":true,"functional":true,"analytics":false,"embeds":false},' ..
  '"action":"custom","revision":1,"language":"nl",' ..
  '"url":"http://127.0.0.1:18181/contact","gpc":false}'
local headers = {
  ["Content-Type"] = "text/plain;charset=UTF-8",
  ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
}
function request()
  return wrk.format("POST", "/api/v1/sites/s" .. (first + math.random(0, n - 1)) .. "/consents", headers, body)
end
function done(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
