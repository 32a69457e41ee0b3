# What CI needs in AWS (with github_repository set: `make aws-ci-bootstrap GITHUB_REPOSITORY=o/r`):
# GitHub's OIDC identity provider, and per environment a permissions boundary and two roles that
# only that repository's workflows can assume, each only from its GitHub environment:
#
#   github-plan-books-<env>-<region>    environment `<env>-plan` (no reviewers): reads the
#                                       environment and its state (writing only the state's lock
#                                       object and its saved plans), copies promoted images into
#                                       its repositories; changes nothing that runs, reads no API
#                                       key, deletes nothing
#   github-deploy-books-<env>-<region>  environment `<env>` (required reviewers for staging and
#                                       prod; dev also from main): applies the reviewed plan
#
# Permissions name their actions one by one (no `service:*`) on the environment's resources by
# name (`books-<env>-…`, `/books/<env>/…`). API Gateway's ARNs carry ids, not names: its resources
# are the environment's by their `Environment` tag (attribute-based access control: a REST API's
# tags hold for its resources, methods, deployments and stages, a usage plan's for its keys), set
# at creation (aws:RequestTag) and never changed by a role (aws:TagKeys).
#
# A deploy role creates the functions' roles. It may create or change a role only with its
# environment's permissions boundary attached (iam:PermissionsBoundary), never remove it, never
# edit the boundary, and never set a role's trust after creation. IAM has no condition on the
# trust a role is created with: the boundary itself allows the environment's function roles only
# their data, and denies every call that does not come from one of the environment's functions
# (lambda:SourceFunctionArn), so a role trusting anyone else is worth nothing to them.
# The roles' names do not start with `books-<env>-`, so no environment's role can touch them.

locals {
  ci             = var.github_repository != null
  oidc_host      = "token.actions.githubusercontent.com"
  oidc_provider  = local.ci ? coalesce(var.github_oidc_provider_arn, try(aws_iam_openid_connect_provider.github[0].arn, null)) : null
  partition      = data.aws_partition.current.partition
  account_id     = data.aws_caller_identity.current.account_id
  arn            = "${local.partition}:%s:${var.region}:${local.account_id}"
  ci_environment = local.ci ? var.ci_environments : {}

  # Per environment: the ARNs its resources have, by the names the root module gives them.
  scope = {
    for env, settings in local.ci_environment : env => {
      prefix       = "${var.project}-${env}"
      repositories = "arn:${format(local.arn, "ecr")}:repository/${var.project}-${env}-*"
      source_repositories = (settings.promoted_from == null ? [] :
      ["arn:${format(local.arn, "ecr")}:repository/${var.project}-${settings.promoted_from}-*"])
      tables    = ["arn:${format(local.arn, "dynamodb")}:table/${var.project}-${env}-*", "arn:${format(local.arn, "dynamodb")}:table/${var.project}-${env}-*/*"]
      functions = "arn:${format(local.arn, "lambda")}:function:${var.project}-${env}-*"
      roles     = "arn:${local.partition}:iam::${local.account_id}:role/${var.project}-${env}-*"
      log_groups = [
        "arn:${format(local.arn, "logs")}:log-group:/${var.project}/${env}/*",
        "arn:${format(local.arn, "logs")}:log-group:/aws/lambda/${var.project}-${env}-*",
        "arn:${format(local.arn, "logs")}:log-group:/aws/apigateway/${var.project}-${env}-*",
      ]
      alarms       = "arn:${format(local.arn, "cloudwatch")}:alarm:${var.project}-${env}-*"
      dashboards   = "arn:${local.partition}:cloudwatch::${local.account_id}:dashboard/${var.project}-${env}-*"
      topics       = "arn:${format(local.arn, "sns")}:${var.project}-${env}-*"
      queues       = "arn:${format(local.arn, "sqs")}:${var.project}-${env}-*"
      secrets      = "arn:${format(local.arn, "secretsmanager")}:secret:${var.project}-${env}-*"
      state        = "arn:${local.partition}:s3:::${local.bucket_name}/${var.project}/${env}/*"
      state_object = "arn:${local.partition}:s3:::${local.bucket_name}/${var.project}/${env}/terraform.tfstate"
      state_lock   = "arn:${local.partition}:s3:::${local.bucket_name}/${var.project}/${env}/terraform.tfstate.tflock"
      plans        = "arn:${local.partition}:s3:::${local.bucket_name}/${var.project}/${env}/plans/*"
      boundary     = "arn:${local.partition}:iam::${local.account_id}:policy/${var.project}-${env}-boundary-${var.region}"
      subjects = {
        plan   = ["repo:${var.github_repository}:environment:${env}-plan"]
        deploy = concat(["repo:${var.github_repository}:environment:${env}"], [for branch in settings.branches : "repo:${var.github_repository}:ref:refs/heads/${branch}"])
      }
    }
  }

  # What Terraform reads to plan the root module, per service.
  read = {
    ecr        = ["ecr:DescribeRepositories", "ecr:ListTagsForResource", "ecr:GetLifecyclePolicy", "ecr:GetRepositoryPolicy", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    dynamodb   = ["dynamodb:DescribeTable", "dynamodb:DescribeContinuousBackups", "dynamodb:DescribeTimeToLive", "dynamodb:ListTagsOfResource"]
    lambda     = ["lambda:GetFunction", "lambda:GetPolicy", "lambda:ListVersionsByFunction", "lambda:ListTags", "lambda:GetAlias"]
    iam        = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies"]
    logs       = ["logs:ListTagsForResource"]
    cloudwatch = ["cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource", "cloudwatch:GetDashboard"]
    sns        = ["sns:GetTopicAttributes", "sns:ListTagsForResource", "sns:ListSubscriptionsByTopic"]
    sqs        = ["sqs:GetQueueAttributes", "sqs:ListQueueTags"]
    # The provider refreshes a secret version with GetSecretValue (its value is not kept), so
    # the roles that plan can read the cursor key: it signs list cursors and nothing more.
    secretsmanager = ["secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy", "secretsmanager:GetSecretValue"]
  }
  # What it writes to apply it.
  write = {
    dynamodb = ["dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:UpdateTable", "dynamodb:UpdateContinuousBackups", "dynamodb:UpdateTimeToLive", "dynamodb:TagResource", "dynamodb:UntagResource"]
    # Every apply publishes a version (the provider then reads the version's configuration until
    # it is active); the alias `live` is created by Terraform and moved by the deployment program
    # (scripts/deploy/release.py), both under the deploy role.
    lambda = ["lambda:CreateFunction", "lambda:DeleteFunction", "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration", "lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency", "lambda:AddPermission", "lambda:RemovePermission", "lambda:TagResource", "lambda:UntagResource", "lambda:PublishVersion", "lambda:GetFunctionConfiguration", "lambda:CreateAlias", "lambda:UpdateAlias", "lambda:DeleteAlias"]
    # Only with the environment's boundary attached (the condition key these actions take).
    iam_bounded    = ["iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:PutRolePermissionsBoundary"]
    iam            = ["iam:DeleteRole", "iam:ListInstanceProfilesForRole", "iam:TagRole", "iam:UntagRole"]
    logs           = ["logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy", "logs:TagResource", "logs:UntagResource", "logs:AssociateKmsKey", "logs:DisassociateKmsKey"]
    cloudwatch     = ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource", "cloudwatch:UntagResource"]
    sns            = ["sns:CreateTopic", "sns:DeleteTopic", "sns:SetTopicAttributes", "sns:TagResource", "sns:UntagResource", "sns:Subscribe"]
    sqs            = ["sqs:CreateQueue", "sqs:DeleteQueue", "sqs:SetQueueAttributes", "sqs:TagQueue", "sqs:UntagQueue"]
    secretsmanager = ["secretsmanager:CreateSecret", "secretsmanager:DeleteSecret", "secretsmanager:UpdateSecret", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage", "secretsmanager:TagResource", "secretsmanager:UntagResource"]
  }
  # The repositories: pushing into them (also before a review: images are inert until a function
  # names them); managing and deleting them (only after one).
  ecr_push   = ["ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"]
  ecr_manage = ["ecr:CreateRepository", "ecr:PutLifecyclePolicy", "ecr:PutImageScanningConfiguration", "ecr:PutImageTagMutability", "ecr:SetRepositoryPolicy", "ecr:DeleteRepositoryPolicy", "ecr:TagResource", "ecr:UntagResource"]
  # ListImages: whether a repository still holds images, before a destroy (scripts/deploy).
  ecr_delete    = ["ecr:DeleteRepository", "ecr:DeleteLifecyclePolicy", "ecr:BatchDeleteImage", "ecr:ListImages"]
  mappings      = ["lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping", "lambda:DeleteEventSourceMapping"]
  mappings_read = ["lambda:GetEventSourceMapping"]
  api_verbs     = ["apigateway:GET", "apigateway:POST", "apigateway:PUT", "apigateway:PATCH", "apigateway:DELETE"]
  # Collections a REST API, key, plan or custom domain name is created in (the new resource's tags
  # are the request's).
  api_collections = ["/restapis", "/apikeys", "/usageplans", "/domainnames"]
  # What an environment owns, under its resources' Environment tag (a domain name's base path
  # mappings inherit its tags, as a REST API's stages inherit the API's: API Gateway's ABAC).
  api_owned    = ["/restapis/*", "/apikeys/*", "/usageplans/*", "/domainnames/*"]
  api_readable = ["/restapis/*", "/usageplans/*", "/domainnames/*"]
  # The web ACL an environment may put in front of its stage (web_acl_arn): reading which one
  # guards a stage, and (deploy) associating one. The account's web ACLs themselves are made
  # outside the stacks; associating needs the stage's own apigateway:SetWebACL, held to the
  # environment's stages by their tags, so no role can change another environment's guard.
  waf_read  = ["wafv2:GetWebACLForResource", "wafv2:GetWebACL"]
  waf_write = ["wafv2:AssociateWebACL", "wafv2:DisassociateWebACL"]
  # An environment's customer-managed key (kms_key_arn): the services encrypting with it use it on
  # the caller's behalf. Creating and reading its tables (DynamoDB's documented key use: grants,
  # data keys), repositories (ECR takes a grant) and secret values, and functions, whose
  # configuration only a principal that may use the key can read or change (Lambda developer
  # guide, encrypting deployment packages). The plan role reads: functions and the secret.
  kms_services = ["dynamodb", "ecr", "lambda", "secretsmanager"]
  kms_deploy   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:CreateGrant"]
  kms_plan     = ["kms:Decrypt"]
  # Actions AWS grants on no narrower resource than "*" (the Service Authorization Reference gives
  # them no resource type): reading an alarm subscription; and (deploy) removing one, which no
  # IAM grant can hold to the environment's own topic: at worst another environment's deploy
  # role could silence that environment's alarm notifications, never its alarms.
  unscoped        = ["ecr:GetAuthorizationToken", "logs:DescribeLogGroups", "secretsmanager:GetRandomPassword", "sns:GetSubscriptionAttributes"]
  unscoped_deploy = ["sns:Unsubscribe"]

  roles = merge([
    for env, scope in local.scope : {
      "${env}-plan"   = { env = env, kind = "plan", scope = scope }
      "${env}-deploy" = { env = env, kind = "deploy", scope = scope }
    }
  ]...)
}

resource "aws_iam_openid_connect_provider" "github" {
  count          = local.ci && var.github_oidc_provider_arn == null ? 1 : 0
  url            = "https://${local.oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
}

data "aws_iam_policy_document" "ci_trust" {
  for_each = local.roles
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = each.value.scope.subjects[each.value.kind]
    }
  }
}

resource "aws_iam_role" "ci" {
  for_each             = local.roles
  name                 = "github-${each.value.kind}-${var.project}-${each.value.env}-${var.region}"
  description          = "GitHub Actions of ${var.github_repository}, ${each.value.kind} of ${each.value.env} in ${var.region}"
  assume_role_policy   = data.aws_iam_policy_document.ci_trust[each.key].json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "ci" {
  for_each = local.roles

  statement {
    sid       = "Unscoped"
    actions   = each.value.kind == "deploy" ? concat(local.unscoped, local.unscoped_deploy) : local.unscoped
    resources = ["*"]
  }
  statement {
    sid       = "ReadRepositories"
    actions   = local.read.ecr
    resources = concat([each.value.scope.repositories], each.value.scope.source_repositories)
  }
  statement {
    # Promotion copies images before a review (inert until a function names them); only the deploy
    # role manages the repositories (`make aws-ci-bootstrap` creates them once).
    sid       = "PushRepositories"
    actions   = each.value.kind == "deploy" ? concat(local.ecr_manage, local.ecr_push, local.ecr_delete) : local.ecr_push
    resources = [each.value.scope.repositories]
  }
  statement {
    sid       = "ReadTables"
    actions   = each.value.kind == "deploy" ? concat(local.read.dynamodb, local.write.dynamodb) : local.read.dynamodb
    resources = each.value.scope.tables
  }
  statement {
    sid       = "Functions"
    actions   = each.value.kind == "deploy" ? concat(local.read.lambda, local.write.lambda) : local.read.lambda
    resources = [each.value.scope.functions]
  }
  statement {
    sid       = "EventSourceMappings"
    actions   = each.value.kind == "deploy" ? local.mappings : local.mappings_read
    resources = ["arn:${format(local.arn, "lambda")}:event-source-mapping:*"]
    condition {
      test     = "ArnLike"
      variable = "lambda:FunctionArn"
      values   = [each.value.scope.functions]
    }
  }
  dynamic "statement" {
    for_each = each.value.kind == "deploy" ? [1] : []
    content {
      # CreateEventSourceMapping takes no resource (the Service Authorization Reference): "*",
      # held to the environment's functions by the key it takes.
      sid       = "CreateEventSourceMappings"
      actions   = ["lambda:CreateEventSourceMapping"]
      resources = ["*"]
      condition {
        test     = "ArnLike"
        variable = "lambda:FunctionArn"
        values   = [each.value.scope.functions]
      }
    }
  }
  statement {
    # A mapping's tags (default_tags): its ARN carries an id, and the tagging actions take no
    # lambda:FunctionArn, so they go by the mapping's Environment tag, set when it is created.
    sid       = "EventSourceMappingTags"
    actions   = each.value.kind == "deploy" ? ["lambda:ListTags", "lambda:TagResource", "lambda:UntagResource"] : ["lambda:ListTags"]
    resources = ["arn:${format(local.arn, "lambda")}:event-source-mapping:*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Environment"
      values   = [each.value.env]
    }
  }
  dynamic "statement" {
    for_each = each.value.kind == "deploy" ? [1] : []
    content {
      sid       = "TagNewEventSourceMappings"
      actions   = ["lambda:TagResource"]
      resources = ["arn:${format(local.arn, "lambda")}:event-source-mapping:*"]
      condition {
        test     = "StringEquals"
        variable = "aws:RequestTag/Environment"
        values   = [each.value.env]
      }
    }
  }
  statement {
    sid       = "ReadRoles"
    actions   = local.read.iam
    resources = [each.value.scope.roles]
  }
  statement {
    sid       = "ReadBoundary"
    actions   = ["iam:GetPolicy"]
    resources = [each.value.scope.boundary]
  }
  statement {
    # Key metadata: the provider resolves the AWS-managed key the tables are encrypted with
    # (alias/aws/dynamodb) when it reads them; DescribeKey gives no access to data.
    sid       = "DescribeKeys"
    actions   = ["kms:DescribeKey"]
    resources = ["arn:${format(local.arn, "kms")}:key/*"]
  }
  statement {
    # The environment's own key (tagged Environment=<env>; README), only through the services that
    # use it for the stack. Without kms_key_arn nothing here is used.
    sid       = "EnvironmentKey"
    actions   = each.value.kind == "deploy" ? local.kms_deploy : local.kms_plan
    resources = ["arn:${format(local.arn, "kms")}:key/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Environment"
      values   = [each.value.env]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [for service in(each.value.kind == "deploy" ? local.kms_services : ["lambda", "secretsmanager"]) : "${service}.${var.region}.amazonaws.com"]
    }
  }
  dynamic "statement" {
    for_each = each.value.kind == "deploy" ? [1] : []
    content {
      sid       = "RolesWithinTheBoundary"
      actions   = local.write.iam_bounded
      resources = [each.value.scope.roles]
      condition {
        test     = "StringEquals"
        variable = "iam:PermissionsBoundary"
        values   = [each.value.scope.boundary]
      }
    }
  }
  dynamic "statement" {
    for_each = each.value.kind == "deploy" ? [1] : []
    content {
      # What takes no boundary condition and grants nothing: deleting a role, its tags.
      sid       = "RolesLifecycle"
      actions   = local.write.iam
      resources = [each.value.scope.roles]
    }
  }
  dynamic "statement" {
    for_each = each.value.kind == "deploy" ? [1] : []
    content {
      sid       = "PassFunctionRoles"
      actions   = ["iam:PassRole"]
      resources = [each.value.scope.roles]
      condition {
        test     = "StringEquals"
        variable = "iam:PassedToService"
        values   = ["lambda.amazonaws.com"]
      }
    }
  }
  statement {
    sid       = "KeepTheBoundaries"
    effect    = "Deny"
    actions   = ["iam:DeleteRolePermissionsBoundary", "iam:UpdateAssumeRolePolicy", "iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:AttachRolePolicy"]
    resources = ["*"]
  }
  statement {
    sid       = "LogGroups"
    actions   = each.value.kind == "deploy" ? concat(local.read.logs, local.write.logs) : local.read.logs
    resources = each.value.scope.log_groups
  }
  statement {
    sid       = "Alarms"
    actions   = each.value.kind == "deploy" ? concat(local.read.cloudwatch, local.write.cloudwatch, ["cloudwatch:PutDashboard", "cloudwatch:DeleteDashboards"]) : local.read.cloudwatch
    resources = [each.value.scope.alarms, each.value.scope.dashboards]
  }
  statement {
    sid       = "Topics"
    actions   = each.value.kind == "deploy" ? concat(local.read.sns, local.write.sns) : local.read.sns
    resources = [each.value.scope.topics]
  }
  statement {
    sid       = "Queues"
    actions   = each.value.kind == "deploy" ? concat(local.read.sqs, local.write.sqs) : local.read.sqs
    resources = [each.value.scope.queues]
  }
  statement {
    sid       = "Secrets"
    actions   = each.value.kind == "deploy" ? concat(local.read.secretsmanager, local.write.secretsmanager) : local.read.secretsmanager
    resources = [each.value.scope.secrets]
  }
  dynamic "statement" {
    for_each = each.value.kind == "deploy" ? [1] : []
    content {
      # Creating a REST API, an API key or a usage plan: only tagged as this environment's.
      sid       = "CreateApis"
      actions   = ["apigateway:POST"]
      resources = [for path in local.api_collections : "arn:${local.partition}:apigateway:${var.region}::${path}"]
      condition {
        test     = "StringEquals"
        variable = "aws:RequestTag/Environment"
        values   = [each.value.env]
      }
    }
  }
  statement {
    # The environment's own REST API (its resources, methods, deployments, stage), keys and
    # plans, by their Environment tag. The plan role reads them, keys excepted.
    sid       = "Apis"
    actions   = each.value.kind == "deploy" ? local.api_verbs : ["apigateway:GET"]
    resources = [for path in(each.value.kind == "deploy" ? local.api_owned : local.api_readable) : "arn:${local.partition}:apigateway:${var.region}::${path}"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Environment"
      values   = [each.value.env]
    }
  }
  statement {
    # WAF checks its own actions on the web ACL and on the stage; the stage's apigateway:SetWebACL
    # (ApiPolicyAndWebAcl) decides whose stage it is.
    sid       = "WebAcls"
    actions   = each.value.kind == "deploy" ? concat(local.waf_read, local.waf_write) : local.waf_read
    resources = ["arn:${format(local.arn, "wafv2")}:regional/webacl/*/*", "arn:${local.partition}:apigateway:${var.region}::/restapis/*/stages/*"]
  }
  dynamic "statement" {
    for_each = each.value.kind == "deploy" ? [1] : []
    content {
      # What API Gateway checks besides the verb, on the environment's own API: its resource policy
      # (allowed_source_cidrs) and its stage's web ACL (web_acl_arn), by the tag the stage inherits.
      sid       = "ApiPolicyAndWebAcl"
      actions   = ["apigateway:UpdateRestApiPolicy", "apigateway:SetWebACL"]
      resources = ["arn:${local.partition}:apigateway:${var.region}::/restapis/*"]
      condition {
        test     = "StringEquals"
        variable = "aws:ResourceTag/Environment"
        values   = [each.value.env]
      }
    }
  }
  dynamic "statement" {
    for_each = each.value.kind == "deploy" ? [1] : []
    content {
      # Tags other than Environment (default_tags may grow); TagResource takes no resource tag.
      sid       = "ApiTags"
      actions   = ["apigateway:PUT", "apigateway:DELETE"]
      resources = ["arn:${local.partition}:apigateway:${var.region}::/tags/*"]
    }
  }
  statement {
    sid       = "NoEnvironmentRetagging"
    effect    = "Deny"
    actions   = ["apigateway:PUT", "apigateway:DELETE", "apigateway:PATCH"]
    resources = ["arn:${local.partition}:apigateway:${var.region}::/tags/*"]
    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "aws:TagKeys"
      values   = ["Environment"]
    }
  }
  dynamic "statement" {
    for_each = each.value.kind == "plan" ? [1] : []
    content {
      # An API key's value: GetApiKey(s) and GetUsagePlanKey(s) answer it, and no condition key
      # tells a read with the value from one without.
      sid       = "NoApiKeyValues"
      effect    = "Deny"
      actions   = ["apigateway:GET"]
      resources = [for path in ["/apikeys", "/apikeys/*", "/usageplans/*/keys", "/usageplans/*/keys/*"] : "arn:${local.partition}:apigateway:${var.region}::${path}"]
    }
  }
  statement {
    sid       = "ApiAccountSettings"
    actions   = ["apigateway:GET"]
    resources = ["arn:${local.partition}:apigateway:${var.region}::/account"]
  }
  statement {
    sid       = "StateList"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${local.partition}:s3:::${local.bucket_name}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.project}/${each.value.env}/*"]
    }
  }
  dynamic "statement" {
    for_each = each.value.kind == "plan" ? [1] : []
    content {
      sid       = "StateRead"
      actions   = ["s3:GetObject"]
      resources = [each.value.scope.state_object]
    }
  }
  dynamic "statement" {
    for_each = each.value.kind == "plan" ? [1] : []
    content {
      # The state's lock while it plans, and the saved plan it hands to the deploy role.
      sid       = "StateLockAndPlans"
      actions   = ["s3:PutObject", "s3:DeleteObject"]
      resources = [each.value.scope.state_lock, each.value.scope.plans]
    }
  }
  dynamic "statement" {
    for_each = each.value.kind == "plan" ? [1] : []
    content {
      # Who holds the lock (Terraform reads it back to release it, or to say who holds it).
      sid       = "StateLockRead"
      actions   = ["s3:GetObject"]
      resources = [each.value.scope.state_lock]
    }
  }
  dynamic "statement" {
    for_each = each.value.kind == "deploy" ? [1] : []
    content {
      # The state, its lock, the saved plans, and the keys' state, which no plan role reads.
      sid       = "State"
      actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
      resources = [each.value.scope.state]
    }
  }
}

resource "aws_iam_role_policy" "ci" {
  for_each = local.roles
  name     = "${each.value.kind}-${var.project}-${each.value.env}"
  role     = aws_iam_role.ci[each.key].id
  policy   = data.aws_iam_policy_document.ci[each.key].json
}
