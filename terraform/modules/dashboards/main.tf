# CloudWatch dashboards from the JSON templates in dashboards/ (one dashboard per file),
# rendered with this deployment's names.
resource "aws_cloudwatch_dashboard" "this" {
  for_each = toset(var.templates)

  dashboard_name = "${var.name_prefix}-${trimsuffix(basename(each.value), ".json")}"
  dashboard_body = templatefile(each.value, var.variables)
}
