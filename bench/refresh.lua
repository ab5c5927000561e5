-- wrk script: POST /oauth/token refresh_token grants, each with a different refresh token.
--
-- Every refresh rotates its token, so a token can be spent once. The tokens come from a
-- file (one per line); with -tN, thread k uses lines k, k+N, k+2N, ... so no two
-- requests share one. Only 200s count as grants; anything else is tallied and the first
-- such response is printed.
--
--   wrk -t1 -c32 -d12s --latency -s bench/refresh.lua http://127.0.0.1:PORT \
--       -- TOKENS_FILE CLIENT_ID CLIENT_SECRET [THREADS]

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  client_id, client_secret = args[2], args[3]
  tokens = {}
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = line
  end
  step = tonumber(args[4] or "1")  -- the -t value
  idx = (tid or 0) + 1
  ok, bad, exhausted, used = 0, 0, 0, 0
  first_bad = ""
  headers = {["Content-Type"] = "application/json"}
end

function request()
  local token = tokens[idx]
  if token == nil then
    -- Out of fresh tokens: replay one (it will fail); the summary reports exhaustion.
    exhausted = exhausted + 1
    token = tokens[1]
  else
    used = used + 1
    idx = idx + step
  end
  local body = '{"grant_type":"refresh_token","refresh_token":"' .. token ..
               '","client_id":"' .. client_id .. '","client_secret":"' .. client_secret .. '"}'
  return wrk.format("POST", "/oauth/token", headers, body)
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  else
    bad = bad + 1
    if first_bad == "" then
      first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 200)
    end
  end
end

function done(summary, latency, requests)
  local tok, tbad, texh, tused, fb = 0, 0, 0, 0, ""
  for _, thread in ipairs(threads) do
    tok = tok + thread:get("ok")
    tbad = tbad + thread:get("bad")
    texh = texh + thread:get("exhausted")
    tused = tused + thread:get("used")
    if fb == "" then fb = thread:get("first_bad") end
  end
  local e = summary.errors
  fb = string.gsub(string.gsub(fb, '\\', '\\\\'), '"', '\\"')
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"non_2xx":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"ok":%d,"not_ok":%d,"tokens_used":%d,"exhausted":%d,"first_not_ok":"%s"}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.timeout, e.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, tok, tbad, tused, texh, fb))
end
