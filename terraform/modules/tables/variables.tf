variable "name_prefix" {
  description = "Prefix of the table names (<prefix>-<logical name>)."
  type        = string
}

variable "definitions_file" {
  description = "Path of the JSON file defining the tables by logical name (terraform/tables.json): hash_key, range_key, attributes (name => S|N|B), ttl_attribute, stream_view_type, global_secondary_indexes."
  type        = string
  validation {
    condition = try(alltrue([
      for table in values(jsondecode(file(var.definitions_file))) :
      length(table.hash_key) > 0 && alltrue([for type in values(table.attributes) : contains(["S", "N", "B"], type)])
    ]), false)
    error_message = "definitions_file must be a JSON object of tables, each with hash_key and attributes of type S, N or B."
  }
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
