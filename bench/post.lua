-- wrk script: POST pre-signed webhook bodies, one per request, in order, from the file named by
-- the BODIES environment variable (lines "<X-Hub-Signature-256>\t<body>"). Each wrk thread
-- starts at its own offset; the list wraps around when exhausted (counted in the summary).
local path = os.getenv("BODIES")
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  sigs, bodies = {}, {}
  for line in io.lines(path) do
    local tab = string.find(line, "\t", 1, true)
    sigs[#sigs + 1] = string.sub(line, 1, tab - 1)
    bodies[#bodies + 1] = string.sub(line, tab + 1)
  end
  n = #bodies
  local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
  i = math.floor((tid - 1) * n / nthreads)
  sent = 0
end

function request()
  i = i % n + 1
  sent = sent + 1
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["X-Hub-Signature-256"] = sigs[i],
  }, bodies[i])
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + (t:get("sent") or 0)
  end
  io.write(string.format("BENCH sent=%d\n", total))
  io.write(string.format("BENCH p50_ms=%.3f p99_ms=%.3f\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
  io.write(string.format("BENCH non2xx=%d errors=%d\n",
    summary.errors.status, summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
end
