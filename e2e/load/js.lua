-- wrk body for GET /s/demo.js as a browser fetches it (brotli).
wrk.headers["Accept-Encoding"] = "gzip, deflate, br"
function done(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
