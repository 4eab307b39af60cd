-- wrk body for POST /api/v1/consents: a first choice from a browser
-- (text/plain, as the banner sends it with fetch keepalive).
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
wrk.body = '{"site":"demo","consent_id":null,"token":null,' ..
  '"choices":{"necessary":true,"functional":true,"analytics":false,"embeds":false},' ..
  '"action":"custom","revision":1,"language":"nl",' ..
  '"url":"http://127.0.0.1:18181/contact","gpc":false}'

-- wrk prints "Non-2xx or 3xx responses" itself when any answer is not a 201.
function done(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
