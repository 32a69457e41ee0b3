variable "project" {
  description = "Project name: the first part of every resource name."
  type        = string
  default     = "books"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.project))
    error_message = "project must be 2-20 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region of the account settings and the state bucket."
  type        = string
  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like an AWS region, e.g. eu-west-1."
  }
}

variable "aws_endpoint_url" {
  description = "Aim every AWS service at this endpoint with fake credentials (moto). Null for real AWS."
  type        = string
  default     = null
}

variable "state_bucket" {
  description = "Create the S3 bucket for the environments' Terraform state (BACKEND=s3)."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the state bucket; null for S3-managed keys."
  type        = string
  default     = null
}
