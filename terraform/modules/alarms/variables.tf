variable "name_prefix" {
  description = "Prefix of the topic and alarm names."
  type        = string
}

variable "functions" {
  description = "Functions by role (command, query, projector): name and timeout (s)."
  type        = map(object({ name = string, timeout_s = number }))
  validation {
    condition     = contains(keys(var.functions), "projector")
    error_message = "functions must contain the projector (its iterator age is alarmed)."
  }
}

variable "tables" {
  description = "Table names by logical name."
  type        = map(string)
}

variable "failure_queue" {
  description = "Name of the SQS queue the projector's stream mapping describes discarded batches to."
  type        = string
}

variable "api_name" {
  description = "REST API name (the ApiName dimension)."
  type        = string
}

variable "stage_name" {
  description = "Stage name (the Stage dimension)."
  type        = string
}

variable "thresholds" {
  description = "Alarm thresholds (see the root module's alarm_thresholds)."
  type = object({
    function_errors    = number
    function_throttles = number
    api_5xx            = number
    api_latency_p99    = number
    iterator_age_ms    = number
    dynamodb_throttles = number
    duration_fraction  = number
    projection_lag_ms  = number
    logs_dropped       = number
    conflict_rate      = number
    cold_start_ratio   = number
  })
}

variable "evaluation" {
  description = "Period (s), evaluation periods and datapoints to alarm of the alarms on per-minute signals (errors, throttles, 5XX, latency, iterator age, projection lag and failures, discarded batches)."
  type        = object({ period_s = number, evaluation_periods = number, datapoints_to_alarm = number })
  default     = { period_s = 60, evaluation_periods = 5, datapoints_to_alarm = 3 }
}

variable "silence_period_s" {
  description = "Period (s) of the telemetry-silence alarms (two in a row)."
  type        = number
  default     = 300
}

variable "namespace" {
  description = "Namespace of our EMF metrics (functions and the books-telemetry extension)."
  type        = string
  default     = "Books"
}

variable "services" {
  description = "Value of the Service dimension by role, as the functions and the extension emit it."
  type        = map(string)
  validation {
    condition     = alltrue([for role in ["command", "query", "projector"] : contains(keys(var.services), role)])
    error_message = "services must name the command, query and projector services."
  }
}

variable "subscribers" {
  description = "Who the topic notifies, by protocol: email addresses, https URLs, sqs queue ARNs."
  type        = object({ email = list(string), https = list(string), sqs = list(string) })
}

variable "kms_key_arn" {
  description = "KMS key of the topic (its policy must admit cloudwatch.amazonaws.com); null leaves the topic unencrypted, since CloudWatch cannot use the AWS-managed aws/sns key."
  type        = string
  default     = null
}
