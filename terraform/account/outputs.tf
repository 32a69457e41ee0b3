output "state_bucket" {
  description = "The state bucket's name, or null when state_bucket is false."
  value       = local.state_bucket ? aws_s3_bucket.state[0].id : null
}

output "apigateway_cloudwatch_role_arn" {
  description = "The region-wide API Gateway CloudWatch role."
  value       = aws_iam_role.apigateway_cloudwatch.arn
}

output "ci_roles" {
  description = "Per environment, the ARNs of the roles its GitHub workflows assume: plan (environment <env>-plan) and deploy (environment <env>)."
  value = {
    for env in keys(local.scope) : env => {
      plan   = aws_iam_role.ci["${env}-plan"].arn
      deploy = aws_iam_role.ci["${env}-deploy"].arn
    }
  }
}
