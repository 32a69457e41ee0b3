variable "name" {
  description = "Function name."
  type        = string
}

variable "image_uri" {
  description = "Image by digest: <repository url>@sha256:<digest>."
  type        = string
  validation {
    condition     = can(regex("@sha256:[0-9a-f]{64}$", var.image_uri))
    error_message = "image_uri must pin a digest (<repository>@sha256:<64 hex>)."
  }
}

variable "command" {
  description = "Image command: the handler to run from the image (e.g. [\"books-projector\"])."
  type        = list(string)
}

variable "architecture" {
  description = "Instruction set of the image."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_mb" {
  description = "Memory size (MB)."
  type        = number
}

variable "timeout_s" {
  description = "Timeout (s)."
  type        = number
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions."
  type        = number
}

variable "environment" {
  description = "Environment variables of the function (BOOKS_TELEMETRY_LOG_GROUP and BOOKS_TELEMETRY_SERVICE are added)."
  type        = map(string)
}

variable "statements" {
  description = "The function's own permissions: IAM statements with sid, actions and resources."
  type = list(object({
    sid       = string
    actions   = list(string)
    resources = list(string)
  }))
}

variable "telemetry_log_group" {
  description = "Log group the telemetry extension ships to."
  type        = string
}

variable "keep_platform_logs" {
  description = "Whether /aws/lambda/<name> exists and the function may write to it."
  type        = bool
}

variable "log_retention_days" {
  description = "Retention of the function's log groups."
  type        = number
}

variable "kms_key_arn" {
  description = "KMS key for the log groups and the environment; null for AWS-managed keys."
  type        = string
  default     = null
}

variable "permissions_boundary" {
  description = "ARN of the permissions boundary the function's role carries (the account stack's for the environment, where CI deploys it); null for none."
  type        = string
  default     = null
}

variable "alias" {
  description = "Name of the alias callers invoke."
  type        = string
  default     = "live"
}
