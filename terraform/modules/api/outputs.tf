output "rest_api_id" {
  description = "REST API id."
  value       = aws_api_gateway_rest_api.this.id
}

output "rest_api_name" {
  description = "REST API name."
  value       = aws_api_gateway_rest_api.this.name
}

output "stage_name" {
  description = "Stage name."
  value       = aws_api_gateway_stage.this.stage_name
}

output "invoke_url" {
  description = "Base URL of the stage: on the custom domain when there is one."
  value       = var.custom_domain == null ? aws_api_gateway_stage.this.invoke_url : "https://${var.custom_domain.name}/${aws_api_gateway_stage.this.stage_name}"
}

output "custom_domain_target" {
  description = "The regional domain name a custom domain's DNS record (CNAME or alias) points at; null without one."
  value       = var.custom_domain == null ? null : aws_api_gateway_domain_name.this[0].regional_domain_name
}

output "usage_plan_ids" {
  description = "Usage plan id by tier."
  value       = { for tier, plan in aws_api_gateway_usage_plan.this : tier => plan.id }
}

output "access_log_group" {
  description = "Access log group of the stage."
  value       = aws_cloudwatch_log_group.access.name
}
