variable "name_prefix" {
  description = "Prefix of the table names (<prefix>-<logical name>)."
  type        = string
}

variable "schema" {
  description = "Tables by logical name, as in terraform/tables.json."
  type = map(object({
    hash_key         = string
    range_key        = optional(string)
    attributes       = map(string)
    ttl_attribute    = optional(string)
    stream_view_type = optional(string)
    global_secondary_indexes = list(object({
      name            = string
      hash_key        = string
      range_key       = optional(string)
      projection_type = string
    }))
  }))
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for server-side encryption; null for the AWS-managed key."
  type        = string
  default     = null
}

variable "point_in_time_recovery" {
  description = "Continuous backups (point-in-time recovery)."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Refuse DeleteTable."
  type        = bool
  default     = true
}
