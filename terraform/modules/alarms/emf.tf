# Alarms on our own EMF metrics (namespace var.namespace, dimension Service): what only the
# functions and the books-telemetry extension can tell. Same SNS topic as the others.

resource "aws_cloudwatch_metric_alarm" "projection_lag" {
  alarm_name          = "${var.name_prefix}-projection-lag"
  alarm_description   = "Stream records reach the read model late: readers see stale books."
  namespace           = var.namespace
  metric_name         = "ProjectionLag"
  dimensions          = { Service = var.services.projector }
  statistic           = "Maximum"
  period              = var.evaluation.period_s
  evaluation_periods  = var.evaluation.evaluation_periods
  datapoints_to_alarm = var.evaluation.datapoints_to_alarm
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.projection_lag_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "projection_failures" {
  alarm_name          = "${var.name_prefix}-projection-failures"
  alarm_description   = "The projector could not apply stream records (reported as batch item failures and retried; past the retries they are discarded to the failure queue)."
  namespace           = var.namespace
  metric_name         = "ProjectionFailures"
  dimensions          = { Service = var.services.projector }
  statistic           = "Sum"
  period              = var.evaluation.period_s
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

# A function that runs while its telemetry does not arrive (the extension cannot ship: access
# denied, log group gone, CloudWatch Logs failing) is silent on every other EMF alarm, whose
# missing data is "not breaching". This one compares the platform's own count of invocations,
# which does not travel through the extension, with the invocations the extension reported.
# Two periods in a row (5 minutes each by default, `silence_period_s`): an invocation's report
# travels with a later flush, so one period may hold invocations whose reports land in the next.
# Two reports are allowed to be missing per period: the last invocations before traffic stops
# keep theirs in a frozen environment until its next invocation or SHUTDOWN (an extension cannot
# run while frozen), so a quiet function with a few invocations is not taken for a silent one.
resource "aws_cloudwatch_metric_alarm" "telemetry_silence" {
  for_each = var.services

  alarm_name          = "${var.name_prefix}-${each.key}-telemetry-silence"
  alarm_description   = "${var.functions[each.key].name} runs but fewer than half of its invocations reach CloudWatch through books-telemetry: its logs and metrics are being lost (see its stderr in the platform log group, if kept)."
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  comparison_operator = "LessThanThreshold"
  threshold           = 0.5
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  metric_query {
    id          = "share"
    expression  = "(FILL(reported, 0) + 2) / invocations"
    label       = "share of invocations whose telemetry arrived (two may wait in frozen environments)"
    return_data = true
  }

  metric_query {
    id = "reported"
    metric {
      namespace   = var.namespace
      metric_name = "Duration"
      dimensions  = { Service = each.value }
      stat        = "SampleCount"
      period      = var.silence_period_s
    }
  }

  metric_query {
    id = "invocations"
    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Invocations"
      dimensions  = { FunctionName = var.functions[each.key].name }
      stat        = "Sum"
      period      = var.silence_period_s
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "logs_dropped" {
  for_each = var.services

  alarm_name          = "${var.name_prefix}-${each.key}-logs-dropped"
  alarm_description   = "Log records of ${each.value} were lost (the platform's or the extension's buffer overflowed, or CloudWatch refused them)."
  namespace           = var.namespace
  metric_name         = "LogsDropped"
  dimensions          = { Service = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.logs_dropped
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "conflict_rate" {
  alarm_name          = "${var.name_prefix}-conflict-rate"
  alarm_description   = "Too many writes refused with 412 (stale If-Match): clients race on the same books."
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.conflict_rate
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  metric_query {
    id          = "rate"
    expression  = "conflicts / (conflicts + replaced + deleted)"
    label       = "share of conditional writes refused"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = { conflicts = "ConcurrencyConflicts", replaced = "BooksUpdated", deleted = "BooksDeleted" }
    content {
      id = metric_query.key
      metric {
        namespace   = var.namespace
        metric_name = metric_query.value
        dimensions  = { Service = var.services.command }
        stat        = "Sum"
        period      = 300
      }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "cold_start_ratio" {
  for_each = var.services

  alarm_name          = "${var.name_prefix}-${each.key}-cold-start-ratio"
  alarm_description   = "Too many invocations of ${each.value} are cold starts: consider provisioned concurrency or a smaller init."
  namespace           = var.namespace
  metric_name         = "ColdStart"
  dimensions          = { Service = each.value }
  statistic           = "Average"
  period              = 900
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.cold_start_ratio
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}
