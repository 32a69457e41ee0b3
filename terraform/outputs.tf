output "invoke_url" {
  description = "Base URL of the API (stage v1): on the custom domain when there is one."
  value       = module.api.invoke_url
}

output "custom_domain_target" {
  description = "Where the custom domain's DNS record (CNAME or alias) points; null without a custom domain."
  value       = module.api.custom_domain_target
}

output "rest_api_id" {
  description = "REST API id (the local cloud reads routes, plans and their keys through it)."
  value       = module.api.rest_api_id
}

output "stage_name" {
  description = "Stage serving the API."
  value       = module.api.stage_name
}

output "function_names" {
  description = "Function name by role."
  value       = { command = module.command.name, query = module.query.name, projector = module.projector.name }
}

output "function_versions" {
  description = "By role: the function, the alias callers invoke, and the version this apply published (the deployment program moves the alias to it)."
  value = {
    for role, function in { command = module.command, query = module.query, projector = module.projector } :
    role => { name = function.name, alias = function.alias, version = function.version }
  }
}

output "release" {
  description = "How provisioning releases the versions it publishes (the release variable; the deployment program reads it)."
  value       = var.release
}

output "table_names" {
  description = "Table name by logical name."
  value       = module.tables.names
}

output "projector_failure_queue" {
  description = "The queue the projector's event source mapping sends the batches it gave up on to (make aws-lambda-replay)."
  value       = aws_sqs_queue.projector_failures.name
}

output "log_groups" {
  description = "Log groups: the telemetry group of each function, the stage's access log."
  value = {
    command    = module.command.telemetry_log_group
    query      = module.query.telemetry_log_group
    projector  = module.projector.telemetry_log_group
    api_access = module.api.access_log_group
  }
}

output "platform_log_groups" {
  description = "Lambda's default log group of each function, when keep_platform_logs is true (empty otherwise)."
  value = var.keep_platform_logs ? {
    command   = module.command.platform_log_group
    query     = module.query.platform_log_group
    projector = module.projector.platform_log_group
  } : {}
}

output "usage_plan_ids" {
  description = "Usage plan id by tier (the keys root module's usage_plans: it puts each client's keys in its tier's plan)."
  value       = module.api.usage_plan_ids
}

output "repository_urls" {
  description = "ECR repository URL by image kind."
  value       = module.registry.repository_urls
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.alarms.topic_arn
}

output "dashboards" {
  description = "CloudWatch dashboard names by template (dashboards/*.json)."
  value       = module.dashboards.names
}

output "rest_api_name" {
  description = "REST API name (the ApiName dimension of its AWS/ApiGateway metrics)."
  value       = module.api.rest_api_name
}

output "name_prefix" {
  description = "Prefix of every resource name (alarms included)."
  value       = local.name_prefix
}

output "metrics" {
  description = "Namespace of the EMF metrics and the value of their Service dimension per function role."
  value       = { namespace = local.metrics_namespace, services = local.services }
}
