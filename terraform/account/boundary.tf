# Per CI environment, the permissions boundary of every role the environment creates (the
# functions' roles): the most any of them may ever do, whatever policy a deploy role puts on it.
# The deploy role may create or change a role only with this boundary attached (ci.tf), and no
# environment role may edit it. Its name does not start with `books-<env>-`: no environment's
# policies name it as their own.
#
# What the functions' roles need (terraform/main.tf, tests/code_calls.py), on the environment's
# resources only: their table items and the write model's stream, the cursor key, the projector's
# failure queue, their log groups, X-Ray; KMS only on behalf of those services.
#
# Their trust cannot be checked when a role is created (IAM has no condition key for it), so the
# boundary denies every call that does not come from one of the environment's own functions:
# Lambda puts the calling function's ARN (lambda:SourceFunctionArn) in the request context of
# every AWS call made from a function's execution environment. The calls Lambda makes itself with
# the role, which carry no such ARN (lambda/latest/dg/permissions-source-function-arn.html), are
# the stream's reads for the event source mapping, its failure messages to the queue, and KMS
# decryption of the environment: those are exempt, on the environment's own resources only.
data "aws_iam_policy_document" "boundary" {
  for_each = local.scope

  statement {
    sid = "Tables"
    actions = [
      "dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
      "dynamodb:ConditionCheckItem", "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
    ]
    resources = each.value.tables
  }
  statement {
    sid       = "Streams"
    actions   = ["dynamodb:ListStreams"]
    resources = ["*"]
  }
  statement {
    sid       = "CursorKeys"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [each.value.secrets]
  }
  statement {
    sid       = "FailureQueues"
    actions   = ["sqs:SendMessage"]
    resources = [each.value.queues]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for group in each.value.log_groups : "${group}:*"]
  }
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
  statement {
    sid       = "KeysThroughTheServices"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["arn:${format(local.arn, "kms")}:key/*"]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [for service in ["secretsmanager", "sqs", "lambda", "logs"] : "${service}.${var.region}.amazonaws.com"]
    }
  }
  statement {
    sid    = "OnlyFromTheEnvironmentsFunctions"
    effect = "Deny"
    not_actions = [
      "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams",
      "sqs:SendMessage", "kms:Decrypt", "kms:GenerateDataKey",
    ]
    resources = ["*"]
    condition {
      test     = "ArnNotLike"
      variable = "lambda:SourceFunctionArn"
      values   = [each.value.functions]
    }
  }
}

resource "aws_iam_policy" "boundary" {
  for_each    = local.scope
  name        = "${var.project}-${each.key}-boundary-${var.region}"
  description = "The most any role of ${var.project}-${each.key} may do (its functions' roles)."
  policy      = data.aws_iam_policy_document.boundary[each.key].json
}
