-- wrk script for benchmarks/serving_speed.py: POST JSON bodies from a pool, print a JSON summary.
--
--   wrk -t1 -c32 -d30s --timeout 30s -s benchmarks/wrk_post_pool.lua URL -- pool.jsonl [TOKEN]
--
-- TOKEN, when given, is sent as Authorization: Bearer with every request.
--
-- The pool holds one request body per line.  Requests are pre-built in init() (wrk's advice
-- for keeping the generator cheap) and sent round robin.  done() prints one line starting
-- with WRKJSON: completed requests, errors by kind (status = HTTP status > 399) and latency
-- percentiles in microseconds.

local requests_pool = {}
local next_index = 0

function init(args)
  local path = args[1]
  local headers = { ["Content-Type"] = "application/json" }
  if args[2] and #args[2] > 0 then
    headers["Authorization"] = "Bearer " .. args[2]
  end
  for line in io.lines(path) do
    if #line > 0 then
      requests_pool[#requests_pool + 1] = wrk.format("POST", nil, headers, line)
    end
  end
  if #requests_pool == 0 then
    error("no request bodies in " .. tostring(path))
  end
end

function request()
  next_index = next_index % #requests_pool + 1
  return requests_pool[next_index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"duration_us": %d, "requests": %d, "bytes": %d, "errors_connect": %d, '
      .. '"errors_read": %d, "errors_write": %d, "errors_status": %d, "errors_timeout": %d, '
      .. '"latency_p50_us": %d, "latency_p95_us": %d, "latency_p99_us": %d, '
      .. '"latency_max_us": %d}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max
  ))
end
