output "api_key_id" {
  description = "Id of the default key, the newest generation of client \"default\" (else of the first client by name): `aws apigateway get-api-key --api-key <id> --include-value`."
  value       = aws_api_gateway_api_key.this[local.default_key].id
}

output "api_key_value" {
  description = "Value of the default API key (`terraform output -raw api_key_value`)."
  value       = aws_api_gateway_api_key.this[local.default_key].value
  sensitive   = true
}

output "client_keys" {
  description = "Per API client: its tier and key ids, oldest generation first (values: the sensitive client_key_values)."
  value = {
    for client, c in var.api_clients : client => {
      tier = c.tier
      keys = [for generation in c.keys : { generation = generation, id = aws_api_gateway_api_key.this["${client}/${generation}"].id }]
    }
  }
}

output "client_key_values" {
  description = "Per API client, the value of its newest key (`make -s aws-lambda-api-key CLIENT=<client>`)."
  value       = { for client, c in var.api_clients : client => aws_api_gateway_api_key.this["${client}/${c.keys[length(c.keys) - 1]}"].value }
  sensitive   = true
}
