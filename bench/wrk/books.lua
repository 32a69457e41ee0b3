-- wrk script of `make bench` (scripts/bench): GET or POST against the local gateway, and a
-- summary as one JSON line on stdout.
--   wrk ... http://127.0.0.1:PORT/v1/books/ID -- get
--   wrk ... http://127.0.0.1:PORT/v1/books    -- post RUN   (RUN: 0-999, keeps ISBNs unique across runs)
local threads, counter, run, post = {}, 0, 0, false

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  post = args[1] == "post"
  run = tonumber(args[2] or "0") % 1000
  if post then
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
  end
end

-- ISBN-13 "978" .. 9 digits .. check digit; the digits are run, thread and counter.
local function isbn()
  counter = counter + 1
  local body = string.format("978%03d%01d%05d", run, id % 10, counter % 100000)
  local sum = 0
  for i = 1, 12 do
    sum = sum + tonumber(body:sub(i, i)) * ((i % 2 == 1) and 1 or 3)
  end
  return body .. tostring((10 - sum % 10) % 10)
end

function request()
  if not post then
    return wrk.format()
  end
  local book = string.format(
    '{"title":"Bench book","authors":["Ada Lovelace"],"isbn":"%s","published_year":1843,"tags":["bench"]}', isbn())
  return wrk.format(nil, nil, nil, book)
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"rps":%.1f,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_ms":{"mean":%.3f,"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f}}\n',
    summary.requests, seconds, summary.requests / seconds, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean / 1000, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
