# The API's keys, in a root module and a state of their own: the provider keeps every key's value
# in the state (it reads keys back with includeValue=true), and the environment's root module,
# whose state the roles CI plans with read, must hold none. The environment's root module makes
# the REST API, its stage and one usage plan per tier; this one makes the keys and puts each in
# the plan of its client's tier (usage_plans: that module's output usage_plan_ids). Only the
# roles that deploy read this state.
locals {
  name_prefix = "${var.project}-${var.environment}"

  # Clients and their keys: each client's keys sit in the usage plan of its tier, so each has its
  # own throttle and quota and its own key id (per-key idempotency, access logs, usage). A key is
  # one generation of the client's keys: rotating adds a generation, hands its value to the
  # client, then removes the old one; both work meanwhile.
  client_keys = merge([
    for client, c in var.api_clients : {
      for generation in c.keys : "${client}/${generation}" => {
        client = client, tier = c.tier, generation = generation, name = "${local.name_prefix}-api-${client}-${generation}"
      }
    }
  ]...)
  # The outputs' default key: the newest generation of client "default", else of the first
  # client by name.
  first_client = contains(keys(var.api_clients), "default") ? "default" : sort(keys(var.api_clients))[0]
  default_key  = "${local.first_client}/${var.api_clients[local.first_client].keys[length(var.api_clients[local.first_client].keys) - 1]}"
}

resource "aws_api_gateway_api_key" "this" {
  for_each = local.client_keys

  name        = each.value.name
  description = "Client ${each.value.client}, key generation ${each.value.generation} (tier ${each.value.tier})."
  enabled     = true
}

resource "aws_api_gateway_usage_plan_key" "this" {
  for_each = local.client_keys

  key_id        = aws_api_gateway_api_key.this[each.key].id
  key_type      = "API_KEY"
  usage_plan_id = try(var.usage_plans[each.value.tier], null) # the precondition names a missing tier

  lifecycle {
    precondition {
      condition     = contains(keys(var.usage_plans), each.value.tier)
      error_message = "client ${each.value.client} is in tier ${each.value.tier}, which is not one of the tiers with a usage plan (${join(", ", keys(var.usage_plans))})."
    }
  }
}
