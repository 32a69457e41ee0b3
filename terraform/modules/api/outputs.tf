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

output "api_key_id" {
  description = "Id of the default key: the newest generation of client \"default\" (else of the first client by name)."
  value       = aws_api_gateway_api_key.this[local.default_key].id
}

output "api_key_value" {
  description = "Value of the default key."
  value       = aws_api_gateway_api_key.this[local.default_key].value
  sensitive   = true
}

output "usage_plan_id" {
  description = "Id of the usage plan holding the default key."
  value       = aws_api_gateway_usage_plan.this[local.client_keys[local.default_key].tier].id
}

output "usage_plan_ids" {
  description = "Usage plan id by tier."
  value       = { for tier, plan in aws_api_gateway_usage_plan.this : tier => plan.id }
}

output "client_keys" {
  description = "Per client: its tier and its key ids, oldest generation first (values: the sensitive client_key_values)."
  value = {
    for client, c in var.clients : client => {
      tier = c.tier
      keys = [for generation in c.keys : { generation = generation, id = aws_api_gateway_api_key.this["${client}/${generation}"].id }]
    }
  }
}

output "client_key_values" {
  description = "Per client, the value of its newest key."
  value       = { for client, c in var.clients : client => aws_api_gateway_api_key.this["${client}/${c.keys[length(c.keys) - 1]}"].value }
  sensitive   = true
}

output "access_log_group" {
  description = "Access log group of the stage."
  value       = aws_cloudwatch_log_group.access.name
}
