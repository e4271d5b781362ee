-- wrk: POST a small chat completion. Body and key come from the environment.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or
  '{"model":"mock","messages":[{"role":"user","content":"Hello, how are you today?"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "sk-bench")

done = function(summary, latency, requests)
  local codes = 0
  io.write(string.format("BENCH non2xx=%d errors=%d\n",
    summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
