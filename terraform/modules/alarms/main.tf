# Alarms on the standard AWS metrics of the service, all notifying one SNS topic. Alarms on our
# own EMF metrics come with the dashboards.
resource "aws_sns_topic" "alarms" {
  #checkov:skip=CKV_AWS_26:Encrypted with kms_key_arn when one is given. Without one it stays unencrypted on purpose: CloudWatch cannot publish to a topic under the AWS-managed aws/sns key (its key policy does not admit cloudwatch.amazonaws.com), so alarms would fail silently; the notifications carry only alarm names and states.
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sns_topic_subscription" "subscriber" {
  for_each  = { for pair in flatten([for protocol, endpoints in var.subscribers : [for endpoint in endpoints : { protocol = protocol, endpoint = endpoint }]]) : "${pair.protocol}:${pair.endpoint}" => pair }
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = each.value.protocol
  endpoint  = each.value.endpoint
}

locals {
  actions = [aws_sns_topic.alarms.arn]
  function_alarms = merge([
    for role, fn in var.functions : {
      "${role}-errors" = {
        metric = "Errors", stat = "Sum", extended = null, threshold = var.thresholds.function_errors, fn = fn.name
        what   = "errors of ${fn.name}"
      }
      "${role}-throttles" = {
        metric = "Throttles", stat = "Sum", extended = null, threshold = var.thresholds.function_throttles, fn = fn.name
        what   = "throttled invocations of ${fn.name}"
      }
      "${role}-duration-p99" = {
        metric    = "Duration", stat = null, extended = "p99", fn = fn.name
        threshold = floor(fn.timeout_s * 1000 * var.thresholds.duration_fraction)
        what      = "p99 duration of ${fn.name} near its ${fn.timeout_s} s timeout"
      }
    }
  ]...)
}

resource "aws_cloudwatch_metric_alarm" "function" {
  for_each = local.function_alarms

  alarm_name          = "${var.name_prefix}-${each.key}"
  alarm_description   = "Too many ${each.value.what}."
  namespace           = "AWS/Lambda"
  metric_name         = each.value.metric
  dimensions          = { FunctionName = each.value.fn }
  statistic           = each.value.stat
  extended_statistic  = each.value.extended
  period              = var.evaluation.period_s
  evaluation_periods  = var.evaluation.evaluation_periods
  datapoints_to_alarm = var.evaluation.datapoints_to_alarm
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  alarm_name          = "${var.name_prefix}-projector-iterator-age"
  alarm_description   = "The projector falls behind the books stream: the read model is stale."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = var.functions.projector.name }
  statistic           = "Maximum"
  period              = var.evaluation.period_s
  evaluation_periods  = var.evaluation.evaluation_periods
  datapoints_to_alarm = var.evaluation.datapoints_to_alarm
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.iterator_age_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "projector_discarded" {
  alarm_name          = "${var.name_prefix}-projector-discarded-batches"
  alarm_description   = "The projector's stream mapping gave up on a batch (its description is in ${var.failure_queue}): the read model misses those changes until they are replayed (make aws-lambda-replay; past the stream's 24 hours, make aws-lambda-rebuild-view)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.failure_queue }
  statistic           = "Maximum"
  period              = var.evaluation.period_s
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${var.name_prefix}-api-5xx"
  alarm_description   = "The API answers 5XX errors."
  namespace           = "AWS/ApiGateway"
  metric_name         = "5XXError"
  dimensions          = { ApiName = var.api_name, Stage = var.stage_name }
  statistic           = "Sum"
  period              = var.evaluation.period_s
  evaluation_periods  = var.evaluation.evaluation_periods
  datapoints_to_alarm = var.evaluation.datapoints_to_alarm
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.api_5xx
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "api_latency" {
  alarm_name          = "${var.name_prefix}-api-latency-p99"
  alarm_description   = "The API's p99 latency is too high."
  namespace           = "AWS/ApiGateway"
  metric_name         = "Latency"
  dimensions          = { ApiName = var.api_name, Stage = var.stage_name }
  extended_statistic  = "p99"
  period              = var.evaluation.period_s
  evaluation_periods  = var.evaluation.evaluation_periods
  datapoints_to_alarm = var.evaluation.datapoints_to_alarm
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.api_latency_p99
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "dynamodb_throttles" {
  for_each = { for pair in setproduct(keys(var.tables), ["ReadThrottleEvents", "WriteThrottleEvents"]) : "${pair[0]}-${pair[1]}" => { table = var.tables[pair[0]], metric = pair[1] } }

  alarm_name          = "${var.name_prefix}-${lower(each.key)}"
  alarm_description   = "DynamoDB throttles ${each.value.table}."
  namespace           = "AWS/DynamoDB"
  metric_name         = each.value.metric
  dimensions          = { TableName = each.value.table }
  statistic           = "Sum"
  period              = var.evaluation.period_s
  evaluation_periods  = var.evaluation.evaluation_periods
  datapoints_to_alarm = var.evaluation.datapoints_to_alarm
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.dynamodb_throttles
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}
