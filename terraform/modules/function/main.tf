# One Lambda function from a container image by digest, with its own role (only the
# statements given plus writing its own logs), its log groups created before it, and X-Ray.
# Every change of its code or configuration is published as a numbered version, and callers
# invoke the alias `live`, never $LATEST.
locals {
  platform_log_group  = "/aws/lambda/${var.name}"
  telemetry_log_group = var.telemetry_log_group
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = "${var.name}-role"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary
}

# The extension ships the function's logs and metrics to the telemetry log group.
resource "aws_cloudwatch_log_group" "telemetry" {
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable (default 30 days for operational logs); set 365 or more where compliance requires it.
  name              = local.telemetry_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

# Lambda's default group exists only when it is to keep a copy; without it (and without the
# permission below) the platform writes nothing there.
resource "aws_cloudwatch_log_group" "platform" {
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable (default 30 days for operational logs); set 365 or more where compliance requires it.
  count             = var.keep_platform_logs ? 1 : 0
  name              = local.platform_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

data "aws_iam_policy_document" "this" {
  dynamic "statement" {
    for_each = var.statements
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }

  statement {
    sid       = "ShipTelemetry"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.telemetry.arn}:*"]
  }

  dynamic "statement" {
    for_each = var.keep_platform_logs ? [1] : []
    content {
      sid       = "PlatformLogs"
      actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      resources = ["${aws_cloudwatch_log_group.platform[0].arn}:*"]
    }
  }

  statement {
    sid = "Tracing"
    # X-Ray's trace APIs take no resource-level permissions.
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.name}-least-privilege"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:A function DLQ applies to asynchronous invocations only: the API functions are invoked synchronously, and the projector's stream mapping has its own on-failure destination (aws_sqs_queue.projector_failures, alarmed).
  #checkov:skip=CKV_AWS_117:The functions reach only DynamoDB and CloudWatch over AWS endpoints; a VPC would add NAT/endpoint cost and cold-start latency for no isolation gain.
  #checkov:skip=CKV_AWS_272:Code signing applies to .zip packages only; images are pinned by digest from an immutable, scanned ECR repository.
  #checkov:skip=CKV_AWS_173:Environment variables are encrypted at rest with the AWS-managed key; set kms_key_arn to use a customer-managed key.
  function_name                  = var.name
  role                           = aws_iam_role.this.arn
  package_type                   = "Image"
  image_uri                      = var.image_uri
  architectures                  = [var.architecture]
  memory_size                    = var.memory_mb
  timeout                        = var.timeout_s
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  image_config {
    command = var.command
  }

  environment {
    # The extension (books-telemetry) ships to the function's own log group, under the same
    # Service dimension the function's own metrics carry.
    variables = merge(var.environment, {
      BOOKS_TELEMETRY_LOG_GROUP = aws_cloudwatch_log_group.telemetry.name
      BOOKS_TELEMETRY_SERVICE   = lookup(var.environment, "BOOKS_SERVICE", var.name)
    })
  }

  tracing_config {
    mode = "Active"
  }

  # A version is immutable (code and configuration together): the alias names what callers
  # run, and the version before it stays to go back to.
  publish = true

  depends_on = [
    aws_iam_role_policy.this,
    aws_cloudwatch_log_group.telemetry,
    aws_cloudwatch_log_group.platform,
  ]
}

# What the API's integrations and the projector's stream mapping invoke. Terraform creates it on
# the first version; from then on the deployment program moves it (scripts/deploy/release.py: at
# once, or a share of the traffic first while the alarms are watched) and `make
# aws-lambda-rollback` moves it back, so where it points is not Terraform's to correct.
resource "aws_lambda_alias" "live" {
  name             = var.alias
  description      = "The version callers run (moved by make aws-lambda-provision and aws-lambda-rollback)."
  function_name    = aws_lambda_function.this.function_name
  function_version = aws_lambda_function.this.version

  lifecycle {
    # The deployment program records the version it replaced in the description.
    ignore_changes = [function_version, routing_config, description]
  }
}
