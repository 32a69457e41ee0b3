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
  description = "Aim every AWS service at this endpoint (moto; credentials from the usual chain). Null for real AWS."
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

variable "github_repository" {
  description = "owner/name of the GitHub repository whose Actions deploy (ci.tf); null for no CI resources."
  type        = string
  default     = null
  validation {
    condition     = var.github_repository == null || can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "github_oidc_provider_arn" {
  description = "GitHub's OIDC provider when the account already has one (one per account); null creates it."
  type        = string
  default     = null
}

variable "ci_environments" {
  description = "The environments CI deploys: which one each is promoted from (the same image digests), and the branches whose pushes may deploy it without a GitHub environment's review (dev: main)."
  type = map(object({
    promoted_from = optional(string)
    branches      = optional(list(string), [])
  }))
  default = {
    dev     = { branches = ["main"] }
    staging = { promoted_from = "dev" }
    prod    = { promoted_from = "staging" }
  }
  validation {
    condition = alltrue([
      for env, settings in var.ci_environments :
      can(regex("^[a-z][a-z0-9-]{1,15}$", env)) && (settings.promoted_from == null || contains(keys(var.ci_environments), coalesce(settings.promoted_from, "-")))
    ])
    error_message = "environment names as in the root module; promoted_from must name another of them."
  }
}
