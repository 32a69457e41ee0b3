variable "project" {
  description = "Project name: the first part of every resource name."
  type        = string
  default     = "books"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.project))
    error_message = "project must be 2-20 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Deployment environment (dev, staging, prod, local, ...): the second part of every resource name."
  type        = string
  default     = "dev"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "environment must be 2-16 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"
  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like an AWS region, e.g. eu-west-1."
  }
}

variable "aws_endpoint_url" {
  description = "Aim every AWS service at this endpoint (the local cloud's moto server; credentials from the usual chain). Null for real AWS."
  type        = string
  default     = null
  validation {
    condition     = var.aws_endpoint_url == null || can(regex("^https?://", var.aws_endpoint_url))
    error_message = "aws_endpoint_url must be an http(s) URL or null."
  }
}

variable "images" {
  description = "Container image of each image kind, by digest (Lambda resolves tags only once; immutable repositories refuse re-pushed tags). `repository` defaults to the ECR repository this module creates."
  type = object({
    command = object({ digest = string, repository = optional(string) })
    query   = object({ digest = string, repository = optional(string) })
  })
  validation {
    condition = alltrue([
      for image in [var.images.command, var.images.query] : can(regex("^sha256:[0-9a-f]{64}$", image.digest))
    ])
    error_message = "each image digest must be sha256:<64 hex digits>."
  }
}

variable "architecture" {
  description = "Instruction set of the functions: the architecture the delivered images were built for (the delivery records it; provisioning refuses a mismatch)."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "functions" {
  description = "Memory (MB), timeout (s) and reserved concurrency of each function. reserved_concurrency -1 leaves the function unreserved (new accounts whose concurrency limit is 10 cannot reserve any); 0 stops it."
  type = object({
    command   = object({ memory_mb = number, timeout_s = number, reserved_concurrency = number })
    query     = object({ memory_mb = number, timeout_s = number, reserved_concurrency = number })
    projector = object({ memory_mb = number, timeout_s = number, reserved_concurrency = number })
  })
  default = {
    command   = { memory_mb = 256, timeout_s = 10, reserved_concurrency = 50 }
    query     = { memory_mb = 256, timeout_s = 10, reserved_concurrency = 100 }
    projector = { memory_mb = 256, timeout_s = 60, reserved_concurrency = 10 }
  }
  validation {
    condition = alltrue([
      for f in values(var.functions) :
      f.memory_mb >= 128 && f.memory_mb <= 10240 && f.timeout_s >= 1 && f.timeout_s <= 900 && f.reserved_concurrency >= -1
    ])
    error_message = "memory_mb must be 128-10240, timeout_s 1-900 and reserved_concurrency -1 (unreserved) or more."
  }
  validation {
    # API Gateway gives up on an integration after 29 s; a longer function timeout only bills
    # work whose answer nobody receives.
    condition     = var.functions.command.timeout_s <= 29 && var.functions.query.timeout_s <= 29
    error_message = "command and query sit behind API Gateway's 29 s integration timeout: their timeout_s must be at most 29."
  }
}

variable "release" {
  description = "How provisioning moves callers to the versions its apply published (scripts/deploy/release.py): all_at_once, or canary: canary_percent of each function's invocations to its new version for canary_minutes while every alarm of the environment is watched, then all of them; an alarm in ALARM moves every function back and fails the provisioning. RELEASE, CANARY_PERCENT and CANARY_MINUTES override it for one provisioning."
  type = object({
    strategy       = string
    canary_percent = optional(number, 10)
    canary_minutes = optional(number, 10)
  })
  default = { strategy = "all_at_once" }
  validation {
    condition = (
      contains(["all_at_once", "canary"], var.release.strategy) &&
      var.release.canary_percent > 0 && var.release.canary_percent < 100 && var.release.canary_minutes >= 0
    )
    error_message = "release.strategy is all_at_once or canary; canary_percent is above 0 and below 100; canary_minutes is 0 or more."
  }
}

variable "log_level" {
  description = "Log filter of the functions (BOOKS_LOG), in tracing EnvFilter syntax."
  type        = string
  default     = "info"
  validation {
    condition     = can(regex("^[a-z0-9_=,:.]+$", var.log_level))
    error_message = "log_level must be an EnvFilter directive such as info or books=debug."
  }
}

variable "log_retention_days" {
  description = "Retention of every log group."
  type        = number
  default     = 30
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for log groups, tables, ECR, function environments and the alarm topic. Null uses AWS-managed encryption (the alarm topic then stays unencrypted: CloudWatch cannot publish to a topic under the AWS-managed aws/sns key). The key policy must let logs.<region>.amazonaws.com and cloudwatch.amazonaws.com use the key; CI's roles use it only when it is tagged Environment=<environment> (terraform/account/ci.tf)."
  type        = string
  default     = null
  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN or null."
  }
}

variable "cursor_key_generation" {
  description = "Generation of the HMAC key that signs list cursors. Raise it by one and apply to rotate the key: cursors signed with the key it replaces stay valid until the next rotation."
  type        = number
  default     = 1
  validation {
    condition     = var.cursor_key_generation >= 1 && floor(var.cursor_key_generation) == var.cursor_key_generation
    error_message = "cursor_key_generation is a whole number from 1."
  }
}

variable "keep_platform_logs" {
  description = "Whether Lambda's default log groups (/aws/lambda/<function>) also keep a copy of the function logs. The extension ships them to its own log group either way."
  type        = bool
  default     = false
}

variable "throttle" {
  description = "API throttling: steady requests per second and burst, for the usage plan and the stage's methods."
  type        = object({ rate_limit = number, burst_limit = number })
  default     = { rate_limit = 50, burst_limit = 100 }
  validation {
    condition     = var.throttle.rate_limit > 0 && var.throttle.burst_limit >= 1
    error_message = "rate_limit must be positive and burst_limit at least 1."
  }
}

variable "quota" {
  description = "Requests per API key per period (DAY, WEEK or MONTH)."
  type        = object({ limit = number, period = string })
  default     = { limit = 100000, period = "DAY" }
  validation {
    condition     = var.quota.limit >= 1 && contains(["DAY", "WEEK", "MONTH"], var.quota.period)
    error_message = "quota.limit must be at least 1 and quota.period DAY, WEEK or MONTH."
  }
}

variable "api_tiers" {
  description = "Usage plans by tier name, each with its throttle and quota. Null (default): one tier, \"default\", with `throttle` and `quota`."
  type = map(object({
    throttle = object({ rate_limit = number, burst_limit = number })
    quota    = object({ limit = number, period = string })
  }))
  default = null
  validation {
    condition = var.api_tiers == null || alltrue([
      for t in values(coalesce(var.api_tiers, {})) :
      t.throttle.rate_limit > 0 && t.throttle.burst_limit >= 1 && t.quota.limit >= 1 && contains(["DAY", "WEEK", "MONTH"], t.quota.period)
    ])
    error_message = "each tier needs rate_limit > 0, burst_limit >= 1, quota.limit >= 1 and quota.period DAY, WEEK or MONTH."
  }
}

variable "allowed_source_cidrs" {
  description = "Source address ranges (CIDR) allowed to call the API; a resource policy denies every other. Null (default): any address, each request still needs an API key of the usage plan."
  type        = list(string)
  default     = null
  validation {
    condition     = var.allowed_source_cidrs == null || alltrue([for c in coalesce(var.allowed_source_cidrs, []) : can(cidrhost(c, 0))])
    error_message = "allowed_source_cidrs must be a list of CIDR blocks (e.g. 203.0.113.0/24) or null."
  }
}

variable "web_acl_arn" {
  description = "ARN of an AWS WAF (v2, REGIONAL scope) web ACL to associate with the API stage. Null (default): none."
  type        = string
  default     = null
  validation {
    condition     = var.web_acl_arn == null || can(regex("^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:[0-9]{12}:regional/webacl/", var.web_acl_arn))
    error_message = "web_acl_arn must be the ARN of a REGIONAL WAFv2 web ACL or null."
  }
}

variable "custom_domain" {
  description = "Serve the API at https://<name>/v1 with TLS 1.2 at least (ACM certificate ARN in the same region), and turn the default execute-api endpoint off. Null (default): the default endpoint."
  type        = object({ name = string, certificate_arn = string })
  default     = null
  validation {
    condition     = var.custom_domain == null || can(regex("^arn:aws[a-z-]*:acm:", try(var.custom_domain.certificate_arn, "")))
    error_message = "custom_domain.certificate_arn must be an ACM certificate ARN."
  }
}

variable "projector_stream" {
  description = "Event source mapping of the projector: batch size, retries, maximum record age (s)."
  type        = object({ batch_size = number, maximum_retry_attempts = number, maximum_record_age_s = number })
  default     = { batch_size = 100, maximum_retry_attempts = 10, maximum_record_age_s = 21600 }
  validation {
    condition = (
      var.projector_stream.batch_size >= 1 && var.projector_stream.batch_size <= 10000 &&
      var.projector_stream.maximum_retry_attempts >= 0 && var.projector_stream.maximum_retry_attempts <= 10000 &&
      var.projector_stream.maximum_record_age_s >= 60 && var.projector_stream.maximum_record_age_s <= 604800
    )
    error_message = "batch_size 1-10000, maximum_retry_attempts 0-10000, maximum_record_age_s 60-604800."
  }
}

variable "alarm_thresholds" {
  description = "Alarm thresholds, per minute over 3 of 5 minutes: function errors and throttles, API 5XX count, API p99 latency (ms), projector iterator age (ms), DynamoDB throttle events, and the function p99 duration as a fraction of its timeout. On our own EMF metrics: projection lag (ms, maximum), log records dropped per 5 minutes, the share of writes refused for a stale If-Match, and the share of invocations that were cold starts (per 15 minutes)."
  type = object({
    function_errors    = number
    function_throttles = optional(number, 0)
    api_5xx            = number
    api_latency_p99    = number
    iterator_age_ms    = number
    dynamodb_throttles = optional(number, 0)
    duration_fraction  = number
    projection_lag_ms  = optional(number, 60000)
    logs_dropped       = optional(number, 0)
    conflict_rate      = optional(number, 0.2)
    cold_start_ratio   = optional(number, 0.5)
  })
  default = {
    function_errors   = 1
    api_5xx           = 5
    api_latency_p99   = 2000
    iterator_age_ms   = 60000
    duration_fraction = 0.8
  }
  validation {
    condition = alltrue([
      for v in [
        var.alarm_thresholds.function_errors, var.alarm_thresholds.function_throttles, var.alarm_thresholds.api_5xx,
        var.alarm_thresholds.api_latency_p99, var.alarm_thresholds.iterator_age_ms, var.alarm_thresholds.dynamodb_throttles,
        var.alarm_thresholds.projection_lag_ms, var.alarm_thresholds.logs_dropped,
      ] : v >= 0
    ])
    error_message = "alarm thresholds must not be negative."
  }
  validation {
    condition     = var.alarm_thresholds.duration_fraction > 0 && var.alarm_thresholds.duration_fraction <= 1
    error_message = "duration_fraction must be in (0, 1]."
  }
  validation {
    condition = alltrue([
      for v in [var.alarm_thresholds.conflict_rate, var.alarm_thresholds.cold_start_ratio] : v > 0 && v <= 1
    ])
    error_message = "conflict_rate and cold_start_ratio are shares in (0, 1]."
  }
}

variable "alarm_evaluation" {
  description = "How the alarms on per-minute signals decide: period (s), evaluation periods and datapoints to alarm (M of N). The default, 3 of 5 one-minute periods, rides out a blip; the local test cloud uses 30-second, 1 of 1 periods so that its alarms fire within a minute."
  type        = object({ period_s = number, evaluation_periods = number, datapoints_to_alarm = number })
  default     = { period_s = 60, evaluation_periods = 5, datapoints_to_alarm = 3 }
  validation {
    condition = (
      (contains([10, 20, 30], var.alarm_evaluation.period_s) || var.alarm_evaluation.period_s % 60 == 0) &&
      var.alarm_evaluation.datapoints_to_alarm >= 1 &&
      var.alarm_evaluation.datapoints_to_alarm <= var.alarm_evaluation.evaluation_periods &&
      var.alarm_evaluation.period_s * var.alarm_evaluation.evaluation_periods <= 86400
    )
    error_message = "period_s is 10, 20, 30 or a multiple of 60; 1 <= datapoints_to_alarm <= evaluation_periods; period_s x evaluation_periods at most one day."
  }
}

variable "telemetry_silence_period_s" {
  description = "Period (s) of the telemetry-silence alarms, which compare each function's invocations with the invocations books-telemetry reported: two periods in a row with fewer than half reported fire it. Five minutes by default: an invocation's report travels with a later flush, so a short period holds invocations whose reports land in the next. The local test cloud uses 30 s to see an outage within minutes."
  type        = number
  default     = 300
  validation {
    condition     = contains([10, 20, 30], var.telemetry_silence_period_s) || (var.telemetry_silence_period_s % 60 == 0 && var.telemetry_silence_period_s >= 60 && var.telemetry_silence_period_s <= 43200)
    error_message = "telemetry_silence_period_s is 10, 20, 30 or a multiple of 60 up to 43200."
  }
}

variable "alarm_subscribers" {
  description = "Who the alarm topic notifies: e-mail addresses, HTTPS endpoints, SQS queues (each confirms or is set up on its side: an e-mail or HTTPS subscription waits for confirmation; a queue's policy must let this topic send). Empty: nobody, which alarm_subscribers_required refuses."
  type = object({
    email = optional(list(string), [])
    https = optional(list(string), [])
    sqs   = optional(list(string), [])
  })
  default = {}
  validation {
    condition     = alltrue([for address in var.alarm_subscribers.email : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", address))])
    error_message = "alarm_subscribers.email must hold e-mail addresses."
  }
  validation {
    condition     = alltrue([for url in var.alarm_subscribers.https : can(regex("^https://[^\\s/]+", url))])
    error_message = "alarm_subscribers.https must hold https:// URLs."
  }
  validation {
    condition     = alltrue([for arn in var.alarm_subscribers.sqs : can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+$", arn))])
    error_message = "alarm_subscribers.sqs must hold SQS queue ARNs."
  }
}

variable "alarm_subscribers_required" {
  description = "Refuse to plan without an alarm subscriber: an environment whose alarms must reach a person (prod sets it)."
  type        = bool
  default     = false
  validation {
    condition = !var.alarm_subscribers_required || length(concat(
      var.alarm_subscribers.email, var.alarm_subscribers.https, var.alarm_subscribers.sqs
    )) > 0
    error_message = "This environment's alarms must reach someone: set alarm_subscribers (email, https or sqs) in its terraform/environments/<env>.tfvars."
  }
}

variable "force_delete_images" {
  description = "Let destroy delete the ECR repositories while they still hold images (throw-away environments; `make aws-lambda-destroy DESTROY_DATA=1` sets it for one destroy)."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Protect the tables against deletion (turn off only for throw-away environments)."
  type        = bool
  default     = true
}

variable "permissions_boundary" {
  description = "ARN of the permissions boundary every role of the environment carries: the account stack's `<project>-<environment>-boundary-<region>` where CI deploys (its deploy role creates roles only with it; scripts/deploy passes it when it exists). Null: none."
  type        = string
  default     = null
  validation {
    condition     = var.permissions_boundary == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/", var.permissions_boundary))
    error_message = "permissions_boundary must be an IAM policy ARN."
  }
}
