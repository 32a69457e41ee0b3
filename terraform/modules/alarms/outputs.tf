output "topic_arn" {
  description = "SNS topic the alarms notify."
  value       = aws_sns_topic.alarms.arn
}

output "alarm_names" {
  description = "Every alarm's name."
  value = concat(
    [for a in aws_cloudwatch_metric_alarm.function : a.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.dynamodb_throttles : a.alarm_name],
    [aws_cloudwatch_metric_alarm.iterator_age.alarm_name, aws_cloudwatch_metric_alarm.projector_discarded.alarm_name, aws_cloudwatch_metric_alarm.api_5xx.alarm_name, aws_cloudwatch_metric_alarm.api_latency.alarm_name],
  )
}
