output "names" {
  description = "Dashboard names by template name."
  value       = { for path, dashboard in aws_cloudwatch_dashboard.this : trimsuffix(basename(path), ".json") => dashboard.dashboard_name }
}
