-- wrk script: calls.lua's calls, each thread stopping once its share of a history is answered
-- (a replay of N calls: N / threads each). args: api key, run id, calls per thread
dofile("calls.lua")

local calls_init = init

function init(args)
  calls_init(args)
  share = tonumber(args[3])
  answered = 0
end

function response(status, headers, body)
  answered = answered + 1
  if answered >= share then
    wrk.thread:stop()
  end
end
