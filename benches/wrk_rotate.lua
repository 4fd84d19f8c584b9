-- wrk script for the benches (benches/benchlib.py runs it): each connection
-- walks the paths of the file named by WRK_URLS (one per line) from its own
-- offset, so wrk requests many distinct URLs instead of one cached one;
-- answers are counted by status in every thread, and one JSON line at the
-- end gives the totals, latency percentiles and the status counts.
local paths = {}
for line in io.lines(os.getenv("WRK_URLS")) do
  if #line > 0 then paths[#paths + 1] = line end
end

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("offset", counter * 7919)
  table.insert(threads, thread)
end

local i = 0
statuses = {}

function request()
  i = i + 1
  local p = paths[((offset or 0) + i) % #paths + 1]
  return wrk.format("GET", p)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, n in pairs(s) do
      all[code] = (all[code] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(all) do
    parts[#parts + 1] = string.format('"%d": %d', code, n)
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_s": %.3f, "throughput_per_s": %.1f, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_ms": {"p50": %.3f, "p90": %.3f, "p99": %.3f, "max": %.3f}, "statuses": {%s}}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, table.concat(parts, ", ")))
end
