variable "name" {
  description = "Name of the REST API (and prefix of its usage plans and log group)."
  type        = string
}

variable "stage_name" {
  description = "Stage serving the API."
  type        = string
  default     = "v1"
}

variable "functions" {
  description = "The functions behind the methods, by role (command, query): name, the alias invoked and its invoke ARN."
  type        = map(object({ name = string, alias = string, invoke_arn = string }))
  validation {
    condition     = contains(keys(var.functions), "command") && contains(keys(var.functions), "query")
    error_message = "functions must contain command and query."
  }
}

variable "throttle" {
  description = "Steady rate (requests/s) and burst of every method of the stage."
  type        = object({ rate_limit = number, burst_limit = number })
}

variable "tiers" {
  description = "Usage plans by tier name: throttle (requests/s, burst) and quota (requests per key per DAY, WEEK or MONTH)."
  type = map(object({
    throttle = object({ rate_limit = number, burst_limit = number })
    quota    = object({ limit = number, period = string })
  }))
}

variable "log_retention_days" {
  description = "Retention of the access log group."
  type        = number
}

variable "kms_key_arn" {
  description = "KMS key of the access log group; null for AWS-managed encryption."
  type        = string
  default     = null
}

variable "allowed_source_cidrs" {
  description = "Source address ranges allowed to call the API (a resource policy denies every other); null: any address, API keys still required."
  type        = list(string)
  default     = null
}

variable "web_acl_arn" {
  description = "AWS WAF (v2, REGIONAL) web ACL to associate with the stage; null: none."
  type        = string
  default     = null
}

variable "custom_domain" {
  description = "A custom domain serving the stage at https://<name>/<stage> under TLS 1.2 (its ACM certificate in the API's region); the default execute-api endpoint is then disabled. Null: the default endpoint."
  type        = object({ name = string, certificate_arn = string })
  default     = null
}
