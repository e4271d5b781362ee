-- wrk: POST a small chat completion, each request with one of BENCH_KEYS keys
-- (sk-keys-0 .. sk-keys-N-1), in turn, so the key index is exercised.
wrk.method = "POST"
wrk.body = '{"model":"mock","max_tokens":5,"messages":[{"role":"user","content":"Hi"}]}'
wrk.headers["Content-Type"] = "application/json"
local count = tonumber(os.getenv("BENCH_KEYS") or "10")
local i = 0

request = function()
  i = (i + 7919) % count
  wrk.headers["Authorization"] = "Bearer sk-keys-" .. i
  return wrk.format(nil)
end

done = function(summary, latency, requests)
  io.write(string.format("BENCH non2xx=%d errors=%d\n",
    summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
