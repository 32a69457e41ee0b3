# The Books service on AWS: images, tables, the three functions with least-privilege roles,
# the projector's stream mapping, the REST API behind a usage plan per tier, and alarms. The API's
# keys are a root module of their own (keys/), whose state holds their values.
locals {
  name_prefix = "${var.project}-${var.environment}"

  image_uri = {
    for kind, image in var.images :
    kind => "${coalesce(image.repository, module.registry.repository_urls[kind])}@${image.digest}"
  }

  # Namespace and Service values of our EMF metrics: the functions' environment sets them,
  # dashboards and alarms read them.
  metrics_namespace = "Books"
  services          = { command = "command", query = "query", projector = "projector" }

  common_environment = {
    BOOKS_LOG                 = var.log_level
    BOOKS_TELEMETRY_NAMESPACE = local.metrics_namespace
  }
}

data "aws_region" "current" {}

module "registry" {
  source       = "./modules/registry"
  name_prefix  = local.name_prefix
  names        = ["command", "query"]
  kms_key_arn  = var.kms_key_arn
  force_delete = var.force_delete_images
}

# tables.json is the one definition of both tables' keys, indexes, TTL and stream: the Rust
# tests create their moto tables from the same file.
module "tables" {
  source              = "./modules/tables"
  name_prefix         = local.name_prefix
  definitions_file    = "${path.module}/tables.json"
  kms_key_arn         = var.kms_key_arn
  deletion_protection = var.deletion_protection
}

# The HMAC key that makes list cursors tamper-evident lives in Secrets Manager, and nowhere
# else: Terraform writes its value through a write-only argument (never kept in state or
# printed), drawn by Secrets Manager's own generator in an ephemeral resource (never in state
# either); the query function reads it once per cold start (functions/books/src/config.rs).
# Rotation: raise cursor_key_generation and apply. Secrets Manager then labels the new value
# AWSCURRENT and the one it replaces AWSPREVIOUS; new environments sign with the new key and
# still accept cursors the old one signed, environments started before it keep signing with
# the old one, which every environment accepts until the next rotation.
ephemeral "aws_secretsmanager_random_password" "cursor_key" {
  password_length     = 64
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "cursor_key" {
  #checkov:skip=CKV2_AWS_57:Rotated by generations through Terraform (cursor_key_generation); a rotation Lambda would be one more function for a key whose loss only invalidates list cursors.
  #checkov:skip=CKV_AWS_149:Encrypted with the AWS-managed key unless kms_key_arn names a customer-managed one.
  name        = "${local.name_prefix}-cursor-key"
  description = "HMAC key of the Books API's list cursors (the query function reads it at cold start)."
  kms_key_id  = var.kms_key_arn
  # Deleted at once with the deployment: the key protects nothing once the API is gone, and a
  # recovery window would hold the name and block a deployment of the same name for weeks.
  recovery_window_in_days = 0
}

resource "aws_secretsmanager_secret_version" "cursor_key" {
  secret_id                = aws_secretsmanager_secret.cursor_key.id
  secret_string_wo         = ephemeral.aws_secretsmanager_random_password.cursor_key.random_password
  secret_string_wo_version = var.cursor_key_generation
}

module "command" {
  source               = "./modules/function"
  name                 = "${local.name_prefix}-command"
  image_uri            = local.image_uri.command
  command              = ["/var/task/books-command"]
  architecture         = var.architecture
  memory_mb            = var.functions.command.memory_mb
  timeout_s            = var.functions.command.timeout_s
  reserved_concurrency = var.functions.command.reserved_concurrency
  telemetry_log_group  = "/${var.project}/${var.environment}/command"
  keep_platform_logs   = var.keep_platform_logs
  log_retention_days   = var.log_retention_days
  kms_key_arn          = var.kms_key_arn
  permissions_boundary = var.permissions_boundary
  environment = merge(local.common_environment, {
    BOOKS_SERVICE = local.services.command
    BOOKS_TABLE   = module.tables.names.books
  })
  # Writes the write model only; it reads its own items back for conditional updates and
  # idempotent replays, and never touches the read model. Its transactions hold Put and Delete
  # items, which IAM authorises as PutItem and DeleteItem (tests/code_calls.py reads them).
  statements = [{
    sid       = "WriteModel"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]
    resources = [module.tables.arns.books]
  }]
}

module "query" {
  source               = "./modules/function"
  name                 = "${local.name_prefix}-query"
  image_uri            = local.image_uri.query
  command              = ["/var/task/books-query"]
  architecture         = var.architecture
  memory_mb            = var.functions.query.memory_mb
  timeout_s            = var.functions.query.timeout_s
  reserved_concurrency = var.functions.query.reserved_concurrency
  telemetry_log_group  = "/${var.project}/${var.environment}/query"
  keep_platform_logs   = var.keep_platform_logs
  log_retention_days   = var.log_retention_days
  kms_key_arn          = var.kms_key_arn
  permissions_boundary = var.permissions_boundary
  environment = merge(local.common_environment, {
    BOOKS_SERVICE    = local.services.query
    BOOKS_VIEW_TABLE = module.tables.names.books_view
    # The secret's ARN, through its version: no function starts before the key exists.
    BOOKS_CURSOR_KEY_SECRET = aws_secretsmanager_secret_version.cursor_key.secret_id
  })
  # Reads the read model only, and its cursor keys (decrypted with the customer-managed key
  # when there is one; the AWS-managed key needs no grant).
  statements = concat([
    {
      sid       = "ReadView"
      actions   = ["dynamodb:GetItem", "dynamodb:Query"]
      resources = [module.tables.arns.books_view, "${module.tables.arns.books_view}/index/*"]
    },
    {
      sid       = "ReadCursorKeys"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [aws_secretsmanager_secret.cursor_key.arn]
    }],
    var.kms_key_arn == null ? [] : [{
      sid       = "DecryptCursorKeys"
      actions   = ["kms:Decrypt"]
      resources = [var.kms_key_arn]
    }]
  )
}

module "projector" {
  source               = "./modules/function"
  name                 = "${local.name_prefix}-projector"
  image_uri            = local.image_uri.query
  command              = ["/var/task/books-projector"]
  architecture         = var.architecture
  memory_mb            = var.functions.projector.memory_mb
  timeout_s            = var.functions.projector.timeout_s
  reserved_concurrency = var.functions.projector.reserved_concurrency
  telemetry_log_group  = "/${var.project}/${var.environment}/projector"
  keep_platform_logs   = var.keep_platform_logs
  log_retention_days   = var.log_retention_days
  kms_key_arn          = var.kms_key_arn
  permissions_boundary = var.permissions_boundary
  environment = merge(local.common_environment, {
    BOOKS_SERVICE    = local.services.projector
    BOOKS_VIEW_TABLE = module.tables.names.books_view
  })
  # Reads the write model's stream, writes the read model.
  statements = concat([
    {
      sid       = "ReadStream"
      actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
      resources = [module.tables.stream_arns.books]
    },
    {
      sid = "ListStreams"
      # ListStreams takes no resource-level permission.
      actions   = ["dynamodb:ListStreams"]
      resources = ["*"]
    },
    {
      sid = "WriteView"
      # One conditional PutItem per book version (a deletion is written as a tombstone).
      actions   = ["dynamodb:PutItem"]
      resources = [module.tables.arns.books_view]
    },
    {
      # Lambda describes the batches it gives up on to the on-failure destination with the
      # function's role.
      sid       = "DescribeDiscardedBatches"
      actions   = ["sqs:SendMessage"]
      resources = [aws_sqs_queue.projector_failures.arn]
    }],
    # The failure queue under a customer-managed key: sending to it encrypts with that key.
    var.kms_key_arn == null ? [] : [{
      sid       = "EncryptDiscardedBatches"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [var.kms_key_arn]
    }],
  )
}

# Where the stream mapping describes every batch it gives up on (retries spent, or records older
# than the maximum age): shard, sequence numbers and why — the records stay on the stream for
# its 24 h, to be replayed from those sequence numbers. Kept 14 days, encrypted, and alarmed.
resource "aws_sqs_queue" "projector_failures" {
  name                      = "${local.name_prefix}-projector-failures"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = var.kms_key_arn == null ? true : null
  kms_master_key_id         = var.kms_key_arn
}

# On the projector's alias, as the API's integrations are on theirs: a release reaches the stream
# when the alias moves. TRIM_HORIZON so no record written before the mapping existed is missed;
# the projector is idempotent, so reading from the oldest record is always safe.
resource "aws_lambda_event_source_mapping" "projector" {
  event_source_arn                   = module.tables.stream_arns.books
  function_name                      = module.projector.alias_arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = var.projector_stream.batch_size
  maximum_batching_window_in_seconds = 1
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = var.projector_stream.maximum_retry_attempts
  maximum_record_age_in_seconds      = var.projector_stream.maximum_record_age_s
  function_response_types            = ["ReportBatchItemFailures"]
  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.projector_failures.arn
    }
  }
}

module "api" {
  source = "./modules/api"
  name   = "${local.name_prefix}-api"
  functions = {
    command = { name = module.command.name, alias = module.command.alias, invoke_arn = module.command.invoke_arn }
    query   = { name = module.query.name, alias = module.query.alias, invoke_arn = module.query.invoke_arn }
  }
  throttle             = var.throttle
  tiers                = coalesce(var.api_tiers, { default = { throttle = var.throttle, quota = var.quota } })
  log_retention_days   = var.log_retention_days
  kms_key_arn          = var.kms_key_arn
  allowed_source_cidrs = var.allowed_source_cidrs
  web_acl_arn          = var.web_acl_arn
  custom_domain        = var.custom_domain
}

module "alarms" {
  source      = "./modules/alarms"
  name_prefix = local.name_prefix
  functions = {
    command   = { name = module.command.name, timeout_s = var.functions.command.timeout_s }
    query     = { name = module.query.name, timeout_s = var.functions.query.timeout_s }
    projector = { name = module.projector.name, timeout_s = var.functions.projector.timeout_s }
  }
  tables           = module.tables.names
  failure_queue    = aws_sqs_queue.projector_failures.name
  api_name         = module.api.rest_api_name
  stage_name       = module.api.stage_name
  thresholds       = var.alarm_thresholds
  evaluation       = var.alarm_evaluation
  silence_period_s = var.telemetry_silence_period_s
  namespace        = local.metrics_namespace
  services         = local.services
  subscribers      = var.alarm_subscribers
  kms_key_arn      = var.kms_key_arn
}

module "dashboards" {
  source      = "./modules/dashboards"
  name_prefix = local.name_prefix
  templates   = [for file in fileset("${path.root}/dashboards", "*.json") : "${path.root}/dashboards/${file}"]
  variables = {
    name_prefix         = local.name_prefix
    region              = data.aws_region.current.name
    namespace           = local.metrics_namespace
    api_name            = module.api.rest_api_name
    stage               = module.api.stage_name
    log_group_command   = module.command.telemetry_log_group
    log_group_query     = module.query.telemetry_log_group
    log_group_projector = module.projector.telemetry_log_group
    failure_queue       = aws_sqs_queue.projector_failures.name
  }
}
