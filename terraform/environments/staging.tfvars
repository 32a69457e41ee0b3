# staging: production's shape at a smaller scale, for release candidates. Its data is
# disposable, but deleting it still takes the explicit opt-in (DESTROY_DATA=1).

functions = {
  command   = { memory_mb = 512, timeout_s = 10, reserved_concurrency = -1 }
  query     = { memory_mb = 512, timeout_s = 10, reserved_concurrency = -1 }
  projector = { memory_mb = 256, timeout_s = 60, reserved_concurrency = -1 }
}

log_retention_days  = 14
throttle            = { rate_limit = 25, burst_limit = 50 }
quota               = { limit = 50000, period = "DAY" }
deletion_protection = false
force_delete_images = false

# A release candidate meets some traffic before all of it: a tenth of the invocations for five
# minutes while the alarms are watched (make aws-lambda-provision; RELEASE=all_at_once for once).
release = { strategy = "canary", canary_percent = 10, canary_minutes = 5 }
