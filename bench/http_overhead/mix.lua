-- wrk script: the benchmark's request mix, in rotation, with a bearer token.
-- wrk -s mix.lua URL -- TOKEN PROJECT_ID ; prints one JSON line on completion.
local requests_ = {}
local i = 0

function init(args)
  local auth = { ["Authorization"] = "Bearer " .. args[1] }
  local pid = args[2]
  requests_ = {
    wrk.format("GET", "/api/health"),
    wrk.format("GET", "/api/auth/me", auth),
    wrk.format("GET", "/api/projects", auth),
    wrk.format("GET", "/api/projects/" .. pid, auth),
    wrk.format("GET", "/api/projects/999999", auth),
    wrk.format("GET", "/api/no-such-route"),
  }
end

function request()
  i = i + 1
  return requests_[(i % #requests_) + 1]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"socket_errors": %d, "non_2xx": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
