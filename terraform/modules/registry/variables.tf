variable "name_prefix" {
  description = "Prefix of the repository names."
  type        = string
}

variable "names" {
  description = "Image kinds, one repository each (<prefix>-<name>)."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key for image encryption; null for AES256."
  type        = string
  default     = null
}

variable "keep_images" {
  description = "How many images each repository keeps."
  type        = number
  default     = 30
  validation {
    condition     = var.keep_images >= 1
    error_message = "keep_images must be at least 1."
  }
}

variable "keep_deployments" {
  description = "How many deployed images (tag prefix deployed-) each repository keeps, whatever their age: the running one and the rollback targets."
  type        = number
  default     = 10
  validation {
    condition     = var.keep_deployments >= 1
    error_message = "keep_deployments must be at least 1."
  }
}

variable "untagged_expiry_days" {
  description = "Days after which untagged images expire."
  type        = number
  default     = 7
  validation {
    condition     = var.untagged_expiry_days >= 1
    error_message = "untagged_expiry_days must be at least 1."
  }
}

variable "force_delete" {
  description = "Delete repositories that still hold images on destroy."
  type        = bool
  default     = false
}
