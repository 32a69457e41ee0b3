variable "name_prefix" {
  description = "Prefix of the dashboard names (<prefix>-<template file name>)."
  type        = string
}

variable "templates" {
  description = "Paths of the dashboard body templates (dashboards/*.json)."
  type        = list(string)
  validation {
    condition     = length(var.templates) > 0 && alltrue([for t in var.templates : endswith(t, ".json")])
    error_message = "templates must list at least one .json file."
  }
}

variable "variables" {
  description = "Values of the templates' placeholders (region, namespace, api_name, stage, log groups…)."
  type        = map(string)
}
