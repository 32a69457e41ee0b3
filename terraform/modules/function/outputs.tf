output "name" {
  description = "Function name."
  value       = aws_lambda_function.this.function_name
}

output "arn" {
  description = "Function ARN."
  value       = aws_lambda_function.this.arn
}

output "invoke_arn" {
  description = "ARN API Gateway integrations invoke."
  value       = aws_lambda_function.this.invoke_arn
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
