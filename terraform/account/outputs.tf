output "state_bucket" {
  description = "The state bucket's name, or null when state_bucket is false."
  value       = var.state_bucket ? aws_s3_bucket.state[0].id : null
}

output "apigateway_cloudwatch_role_arn" {
  description = "The region-wide API Gateway CloudWatch role."
  value       = aws_iam_role.apigateway_cloudwatch.arn
}
