variable "project" {
  description = "Project name: the first part of every resource name (as in the environment's root module)."
  type        = string
  default     = "books"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.project))
    error_message = "project must be 2-20 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Deployment environment (dev, staging, prod, local, ...): the second part of every resource name (as in the environment's root module)."
  type        = string
  default     = "dev"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "environment must be 2-16 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region of the environment's API."
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

variable "api_clients" {
  description = "The API's clients: per client, its tier (a key of api_tiers, or \"default\") and the generations of its keys, one key each, oldest first. Rotate a client's key by adding a generation, handing the new key over (make aws-lambda-api-key CLIENT=…), then removing the old one: both work in between."
  type        = map(object({ tier = string, keys = list(string) }))
  default     = { default = { tier = "default", keys = ["1"] } }
  validation {
    condition     = length(var.api_clients) >= 1 && alltrue([for c in values(var.api_clients) : length(c.keys) >= 1 && length(c.keys) == length(distinct(c.keys))])
    error_message = "api_clients needs at least one client, each with at least one key generation, none repeated."
  }
  validation {
    condition     = alltrue([for name, c in var.api_clients : can(regex("^[a-z0-9][a-z0-9-]*$", name)) && alltrue([for k in c.keys : can(regex("^[a-z0-9][a-z0-9-]*$", k))])])
    error_message = "client names and key generations are lowercase letters, digits and dashes."
  }
}

variable "usage_plans" {
  description = "Usage plan id by tier: the environment root module's output usage_plan_ids (terraform output -json usage_plan_ids)."
  type        = map(string)
  validation {
    condition     = length(var.usage_plans) >= 1 && alltrue([for id in values(var.usage_plans) : can(regex("^[A-Za-z0-9]+$", id))])
    error_message = "usage_plans maps each tier to a usage plan id (letters and digits), at least one."
  }
}
