# What belongs to an AWS account and region rather than to one environment, applied once per
# region by `make aws-account` (and by `make aws-lambda-provision` when it finds it missing):
#
# - the region-wide API Gateway CloudWatch role that stage logging needs. Every environment's
#   stage logs through it, so no environment owns it: destroying one never resets it;
# - with state_bucket = true (`make aws-state-bucket`) or CI, the S3 bucket that holds the
#   environments' Terraform state (versioned, encrypted, public access blocked; Terraform locks
#   with a lock object next to each state, `use_lockfile`);
# - with github_repository set, what CI needs (ci.tf).
#
# Its own state stays local, under .deploy/account-<region>/ (scripts/aws-lambda).
locals {
  local_endpoint = var.aws_endpoint_url != null
  bucket_name    = "${var.project}-tfstate-${data.aws_caller_identity.current.account_id}-${var.region}"
  # CI keeps every environment's state there.
  state_bucket = var.state_bucket || var.github_repository != null
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "apigateway_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "apigateway_cloudwatch" {
  name               = "${var.project}-apigateway-cloudwatch-${var.region}"
  assume_role_policy = data.aws_iam_policy_document.apigateway_assume.json
}

# What AWS's AmazonAPIGatewayPushToCloudWatchLogs grants, inline: API Gateway writes access and
# execution logs to groups it names itself, so the resource cannot be narrowed further.
data "aws_iam_policy_document" "apigateway_cloudwatch" {
  statement {
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:DescribeLogStreams",
      "logs:PutLogEvents",
      "logs:GetLogEvents",
      "logs:FilterLogEvents",
    ]
    resources = ["arn:${data.aws_partition.current.partition}:logs:*:*:*"]
  }
  statement {
    # Takes no resource narrower than "*".
    actions   = ["logs:DescribeLogGroups"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "apigateway_cloudwatch" {
  name   = "push-to-cloudwatch-logs"
  role   = aws_iam_role.apigateway_cloudwatch.id
  policy = data.aws_iam_policy_document.apigateway_cloudwatch.json
}

resource "aws_api_gateway_account" "this" {
  cloudwatch_role_arn = aws_iam_role.apigateway_cloudwatch.arn
  # Destroying this stack clears the setting rather than leave it naming the deleted role. The
  # provider marks the attribute deprecated only because v6 makes resetting the one behaviour.
  # moto 5.2 fails on the reset (HTTP 500, retried for minutes); its state dies with it anyway.
  reset_on_delete = !local.local_endpoint
  depends_on      = [aws_iam_role_policy.apigateway_cloudwatch]
}

resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_18:Access logging of the state bucket would need a second bucket per region; CloudTrail data events are the audit trail where one is required.
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice of the account, not of this project; versioning keeps every state.
  #checkov:skip=CKV2_AWS_62:No consumer of state-change events.
  #checkov:skip=CKV2_AWS_61:Every version of every state is kept (they are a few kilobytes): no lifecycle rule.
  #checkov:skip=CKV_AWS_145:Encrypted with S3-managed keys by default; set kms_key_arn for a customer-managed key.
  count  = local.state_bucket ? 1 : 0
  bucket = local.bucket_name
  # Holds every environment's state: never deleted with objects in it.
  force_destroy = false
}

resource "aws_s3_bucket_versioning" "state" {
  count  = local.state_bucket ? 1 : 0
  bucket = aws_s3_bucket.state[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  count  = local.state_bucket ? 1 : 0
  bucket = aws_s3_bucket.state[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  count                   = local.state_bucket ? 1 : 0
  bucket                  = aws_s3_bucket.state[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# HTTPS only. Not on a local endpoint, which serves plain HTTP (moto enforces bucket policies,
# so this one would lock Terraform out of its own state there).
data "aws_iam_policy_document" "state_tls_only" {
  count = local.state_bucket && !local.local_endpoint ? 1 : 0
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.state[0].arn,
      "${aws_s3_bucket.state[0].arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  count  = local.state_bucket && !local.local_endpoint ? 1 : 0
  bucket = aws_s3_bucket.state[0].id
  policy = data.aws_iam_policy_document.state_tls_only[0].json
}
