output "name" {
  description = "Function name."
  value       = aws_lambda_function.this.function_name
}

output "arn" {
  description = "Function ARN."
  value       = aws_lambda_function.this.arn
}

output "version" {
  description = "The version this apply published (or the newest, when nothing changed)."
  value       = aws_lambda_function.this.version
}

output "alias" {
  description = "Name of the alias callers invoke."
  value       = aws_lambda_alias.live.name
}

output "alias_arn" {
  description = "ARN of the alias callers invoke (the projector's stream mapping names it)."
  value       = aws_lambda_alias.live.arn
}

output "invoke_arn" {
  description = "What API Gateway integrations invoke: the alias, never $LATEST."
  value       = aws_lambda_alias.live.invoke_arn
}

output "role_name" {
  description = "Name of the function's role."
  value       = aws_iam_role.this.name
}

output "telemetry_log_group" {
  description = "Log group the extension ships to."
  value       = aws_cloudwatch_log_group.telemetry.name
}

output "platform_log_group" {
  description = "Lambda's default log group, when kept."
  value       = var.keep_platform_logs ? aws_cloudwatch_log_group.platform[0].name : null
}
