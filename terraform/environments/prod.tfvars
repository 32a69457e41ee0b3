# prod: reserved concurrency per function (the account must allow it), more memory for the
# API's latency, alarms that must reach someone, a year of logs, the default throttle and quota,
# and both tables protected: destroying prod takes the explicit opt-in (DESTROY_DATA=1).

functions = {
  command   = { memory_mb = 1024, timeout_s = 10, reserved_concurrency = 50 }
  query     = { memory_mb = 1024, timeout_s = 10, reserved_concurrency = 100 }
  projector = { memory_mb = 512, timeout_s = 60, reserved_concurrency = 10 }
}

# prod's alarms must reach a person: planning prod without a subscriber is refused. Set who, e.g.
#   alarm_subscribers = { email = ["oncall@example.org"], https = ["https://pager.example.org/hook"] }
alarm_subscribers_required = true

log_retention_days  = 365
throttle            = { rate_limit = 50, burst_limit = 100 }
quota               = { limit = 100000, period = "DAY" }
deletion_protection = true
force_delete_images = false
alarm_thresholds = {
  function_errors   = 1
  api_5xx           = 5
  api_latency_p99   = 1000
  iterator_age_ms   = 30000
  duration_fraction = 0.8
}

# A new version serves a tenth of the invocations for ten minutes, watched by the alarms above;
# an alarm moves every function back and fails the provisioning (scripts/deploy/release.py).
release = { strategy = "canary", canary_percent = 10, canary_minutes = 10 }
