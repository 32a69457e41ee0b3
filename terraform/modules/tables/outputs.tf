output "names" {
  description = "Table name by logical name."
  value       = { for key, table in aws_dynamodb_table.this : key => table.name }
}

output "arns" {
  description = "Table ARN by logical name."
  value       = { for key, table in aws_dynamodb_table.this : key => table.arn }
}

output "stream_arns" {
  description = "Stream ARN by logical name (tables with a stream only)."
  value       = { for key, table in aws_dynamodb_table.this : key => table.stream_arn if table.stream_enabled }
}
