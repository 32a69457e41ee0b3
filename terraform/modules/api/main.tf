# The REST API of the HTTP contract: every method requires an API key, integrates with its
# function through AWS_PROXY, and is served by stage `v1` behind one usage plan per tier (the
# keys are the keys root module's, ../../keys).
locals {
  # Resource paths of the contract, and which function serves each method.
  paths = { books = "/books", book = "/books/{id}" }
  methods = {
    create  = { resource = "books", http_method = "POST", function = "command" }
    list    = { resource = "books", http_method = "GET", function = "query" }
    get     = { resource = "book", http_method = "GET", function = "query" }
    replace = { resource = "book", http_method = "PUT", function = "command" }
    delete  = { resource = "book", http_method = "DELETE", function = "command" }
  }
}

resource "aws_api_gateway_rest_api" "this" {
  name           = var.name
  description    = "Books API (CQRS on Lambda)"
  api_key_source = "HEADER"

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  # With a custom domain, its TLS 1.2 policy is the only way in: the default endpoint (whose
  # TLS policy AWS sets) is turned off.
  disable_execute_api_endpoint = var.custom_domain != null

  # Should the API ever be replaced (new id, new URL), the new one exists before the old one
  # goes, so the old URL keeps serving until then (checkov CKV_AWS_237).
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_resource" "books" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = "books"
}

resource "aws_api_gateway_resource" "book" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.books.id
  path_part   = "{id}"
}

locals {
  resource_ids = { books = aws_api_gateway_resource.books.id, book = aws_api_gateway_resource.book.id }
}

resource "aws_api_gateway_method" "this" {
  #checkov:skip=CKV2_AWS_53:Request validation is the functions' job: they answer problem+json naming the field at fault, which a gateway validator cannot.
  for_each = local.methods

  rest_api_id      = aws_api_gateway_rest_api.this.id
  resource_id      = local.resource_ids[each.value.resource]
  http_method      = each.value.http_method
  authorization    = "NONE"
  api_key_required = true
  request_parameters = each.value.resource == "book" ? {
    "method.request.path.id" = true
  } : {}
}

resource "aws_api_gateway_integration" "this" {
  for_each = local.methods

  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = local.resource_ids[each.value.resource]
  http_method             = aws_api_gateway_method.this[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = var.functions[each.value.function].invoke_arn
  timeout_milliseconds    = 29000
}

resource "aws_lambda_permission" "this" {
  for_each = local.methods

  statement_id  = "apigateway-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = var.functions[each.value.function].name
  qualifier     = var.functions[each.value.function].alias
  principal     = "apigateway.amazonaws.com"
  # Only this method on this path of this API may invoke the function; {id} is a wildcard.
  source_arn = "${aws_api_gateway_rest_api.this.execution_arn}/*/${each.value.http_method}${replace(local.paths[each.value.resource], "{id}", "*")}"
}

# Who may call at all, before any key is looked at: with `allowed_source_cidrs`, a resource
# policy denies every other source address (API Gateway evaluates it before the API key).
data "aws_iam_policy_document" "source" {
  count = var.allowed_source_cidrs == null ? 0 : 1

  statement {
    sid       = "Invoke"
    effect    = "Allow"
    actions   = ["execute-api:Invoke"]
    resources = ["${aws_api_gateway_rest_api.this.execution_arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
  }

  statement {
    sid       = "OnlyFromAllowedSources"
    effect    = "Deny"
    actions   = ["execute-api:Invoke"]
    resources = ["${aws_api_gateway_rest_api.this.execution_arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "NotIpAddress"
      variable = "aws:SourceIp"
      values   = var.allowed_source_cidrs
    }
  }
}

resource "aws_api_gateway_rest_api_policy" "this" {
  count = var.allowed_source_cidrs == null ? 0 : 1

  rest_api_id = aws_api_gateway_rest_api.this.id
  policy      = data.aws_iam_policy_document.source[0].json
}

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id

  # A deployment is a snapshot: redeploy whenever the API's shape changes.
  triggers = {
    # Only attributes that define the API: computed ones may read back differently.
    redeployment = sha1(jsonencode([
      [for r in [aws_api_gateway_resource.books, aws_api_gateway_resource.book] : [r.id, r.path_part]],
      [for k, m in aws_api_gateway_method.this : [k, m.id, m.http_method, m.api_key_required, m.authorization]],
      [for k, i in aws_api_gateway_integration.this : [k, i.id, i.type, i.uri, i.timeout_milliseconds]],
      # A resource policy takes effect with the next deployment.
      [for p in aws_api_gateway_rest_api_policy.this : p.policy],
    ]))
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [aws_api_gateway_integration.this]
}

resource "aws_cloudwatch_log_group" "access" {
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable (default 30 days for operational logs); set 365 or more where compliance requires it.
  name              = "/aws/apigateway/${var.name}/access"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV_AWS_120:Responses depend on the caller and change on every write; clients revalidate with ETag/If-None-Match instead of a stage cache.
  #checkov:skip=CKV2_AWS_51:Clients authenticate with API keys; mutual TLS needs a custom domain, outside this module.
  #checkov:skip=CKV2_AWS_77:The web ACL (var.web_acl_arn) is made outside this module; its rules, AWS's Known Bad Inputs (Log4j) group among them, are the account's to choose.
  #checkov:skip=CKV2_AWS_29:The web ACL is optional (var.web_acl_arn): rules and their cost are an account-level choice; API keys, usage-plan throttling and quotas are always on.
  rest_api_id          = aws_api_gateway_rest_api.this.id
  deployment_id        = aws_api_gateway_deployment.this.id
  stage_name           = var.stage_name
  xray_tracing_enabled = true

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId        = "$context.requestId"
      extendedId       = "$context.extendedRequestId"
      ip               = "$context.identity.sourceIp"
      domainName       = "$context.domainName"
      apiKeyId         = "$context.identity.apiKeyId"
      requestTime      = "$context.requestTimeEpoch"
      httpMethod       = "$context.httpMethod"
      resourcePath     = "$context.resourcePath"
      status           = "$context.status"
      protocol         = "$context.protocol"
      responseLength   = "$context.responseLength"
      latencyMs        = "$context.responseLatency"
      integrationMs    = "$context.integration.latency"
      integrationError = "$context.integration.error"
      errorType        = "$context.error.responseType"
      xrayTraceId      = "$context.xrayTraceId"
      tlsVersion       = "$context.tlsVersion"
      cipherSuite      = "$context.cipherSuite"
      wafResponseCode  = "$context.wafResponseCode"
    })
  }

}

resource "aws_wafv2_web_acl_association" "stage" {
  count = var.web_acl_arn == null ? 0 : 1

  resource_arn = aws_api_gateway_stage.this.arn
  web_acl_arn  = var.web_acl_arn
}

resource "aws_api_gateway_domain_name" "this" {
  count = var.custom_domain == null ? 0 : 1

  domain_name              = var.custom_domain.name
  regional_certificate_arn = var.custom_domain.certificate_arn
  security_policy          = "TLS_1_2"

  endpoint_configuration {
    types = ["REGIONAL"]
  }
}

resource "aws_api_gateway_base_path_mapping" "this" {
  count = var.custom_domain == null ? 0 : 1

  api_id      = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  domain_name = aws_api_gateway_domain_name.this[0].domain_name
  base_path   = aws_api_gateway_stage.this.stage_name
}

resource "aws_api_gateway_method_settings" "all" {
  #checkov:skip=CKV_AWS_225:Responses depend on the caller and change on every write; clients revalidate with ETag/If-None-Match instead of a stage cache.
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled        = true
    logging_level          = "ERROR"
    data_trace_enabled     = false
    throttling_rate_limit  = var.throttle.rate_limit
    throttling_burst_limit = var.throttle.burst_limit
  }
}

# One usage plan per tier, each with its own throttle and quota. The keys, and which plan holds
# each, are the keys root module's (terraform/keys), in a state of its own: the provider keeps a
# key's value in the state, and the roles CI plans with read this module's state.
resource "aws_api_gateway_usage_plan" "this" {
  for_each = var.tiers

  name = "${var.name}-${each.key}"

  # Referencing the stage resource orders the plan after the stage exists.
  api_stages {
    api_id = aws_api_gateway_rest_api.this.id
    stage  = aws_api_gateway_stage.this.stage_name
  }

  throttle_settings {
    rate_limit  = each.value.throttle.rate_limit
    burst_limit = each.value.throttle.burst_limit
  }

  quota_settings {
    limit  = each.value.quota.limit
    period = each.value.quota.period
  }
}

# Deployments made before clients and tiers had one plan: it becomes the "default" tier's.
moved {
  from = aws_api_gateway_usage_plan.this
  to   = aws_api_gateway_usage_plan.this["default"]
}
