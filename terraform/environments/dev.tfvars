# dev (ENV=dev sets var.environment): the default environment (`make aws-lambda-* ENV=dev`). Small, cheap, throw-away: no
# reserved concurrency (new accounts have a concurrency limit of 10), short log retention, no
# protection against deleting its data.

functions = {
  command   = { memory_mb = 256, timeout_s = 10, reserved_concurrency = -1 }
  query     = { memory_mb = 256, timeout_s = 10, reserved_concurrency = -1 }
  projector = { memory_mb = 256, timeout_s = 60, reserved_concurrency = -1 }
}

log_level           = "info,books=debug"
log_retention_days  = 7
throttle            = { rate_limit = 10, burst_limit = 20 }
quota               = { limit = 10000, period = "DAY" }
deletion_protection = false
force_delete_images = true
