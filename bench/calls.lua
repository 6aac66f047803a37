-- wrk script: POST a different CallPower call each request (so none is a duplicate), from one of
-- 20,000 members in scattered order (as real callers come: the mobile index is written all over).
-- args: api key, run id
local thread_number = 0

function setup(thread)
  thread:set("tid", thread_number)
  thread_number = thread_number + 1
end

function init(args)
  key = args[1]
  run = args[2]
  counter = 0
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"mobile":"+1555%03d%04d","status":"%s","call_timestamp":"2017-11-07T18:54:10.%06d",' ..
    '"call_duration":%d,"campaign_target_title":"Representative","campaign_target_district":"FL-7",' ..
    '"callpower_campaign_id":1,"campaign_target_name":"Mickey Mouse",' ..
    '"callpower_campaign_name":"bench-%s-%d","number_dialed_into":"+15554441234"}',
    math.floor((counter * 7919 + tid * 4099) % 20000 / 10000), (counter * 7919 + tid * 4099) % 10000, (counter % 3 == 0) and "busy" or "completed", counter % 1000000,
    counter, run, tid)
  return wrk.format("POST", "/api/v1/callpower/call", {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json",
    ["X-DS-Importer-API-Key"] = key,
  }, body)
end
