# The DynamoDB tables, built from tables.json: the one definition of keys and indexes that the
# Rust tests read too, so the tests and the deployment cannot disagree.
locals {
  # Logical name => definition; absent optional fields read as null / empty.
  definitions = {
    for name, table in jsondecode(file(var.definitions_file)) : name => {
      hash_key                 = table.hash_key
      range_key                = lookup(table, "range_key", null)
      attributes               = table.attributes
      ttl_attribute            = lookup(table, "ttl_attribute", null)
      stream_view_type         = lookup(table, "stream_view_type", null)
      global_secondary_indexes = lookup(table, "global_secondary_indexes", [])
    }
  }
}

resource "aws_dynamodb_table" "this" {
  for_each = local.definitions

  name                        = "${var.name_prefix}-${each.key}"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = each.value.hash_key
  range_key                   = each.value.range_key
  stream_enabled              = each.value.stream_view_type != null
  stream_view_type            = each.value.stream_view_type
  deletion_protection_enabled = var.deletion_protection

  dynamic "attribute" {
    for_each = each.value.attributes
    content {
      name = attribute.key
      type = attribute.value
    }
  }

  dynamic "global_secondary_index" {
    for_each = each.value.global_secondary_indexes
    content {
      name            = global_secondary_index.value.name
      hash_key        = global_secondary_index.value.hash_key
      range_key       = lookup(global_secondary_index.value, "range_key", null)
      projection_type = global_secondary_index.value.projection_type
    }
  }

  dynamic "ttl" {
    for_each = each.value.ttl_attribute == null ? [] : [each.value.ttl_attribute]
    content {
      enabled        = true
      attribute_name = ttl.value
    }
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}
